#!/bin/sh
# One swarm node's dockerd, run inside its test host: testhosts exec lshK swarm-node.sh K DIR
#
# `ip netns exec` gives the command a mount namespace of its own with a fresh /sys, so the
# cgroup v1 hierarchies are mounted again (without them dockerd stops with "Devices cgroup
# isn't mounted"). Everything of this node lives under DIR: data and exec roots, the socket;
# its containers go under the cgroup parent lsw-lshK, its bridge is 10.78.K.1/24.
set -eu
k=$1
dir=$2
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for controller in cpu cpuacct cpuset memory devices freezer blkio pids; do
    mkdir -p "/sys/fs/cgroup/$controller"
    mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller"
done
mkdir -p /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
mkdir -p "$dir/data" "$dir/exec"
exec dockerd \
    --data-root "$dir/data" --exec-root "$dir/exec" \
    --host "unix://$dir/docker.sock" --pidfile "$dir/dockerd.pid" \
    --bip "10.78.$k.1/24" --cgroup-parent "lsw-lsh$k" \
    --exec-opt native.cgroupdriver=cgroupfs --log-level warn
