#!/bin/sh
# Starts nginx with deploy/nginx.conf in a container: writes the address of the container's DNS
# server (Docker: 127.0.0.11; podman: its network's gateway, aardvark-dns) to the file the
# config includes, since nginx resolves `api` itself and reads no /etc/resolv.conf.
set -eu
nameserver=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
case "$nameserver" in
    *:*) nameserver="[$nameserver]" ;;
esac
echo "resolver $nameserver valid=5s ipv6=off;" > /etc/nginx/resolver.conf
exec nginx -g 'daemon off;'
