"""`latentserve-batch`: encode folders of images to .npz, decode latents or sample to PNGs,
screen folders for anomalies into a CSV.

    latentserve-batch encode digits/ -o latents.npz --concurrency 8
    latentserve-batch decode latents.npz -o decoded/
    latentserve-batch sample -n 64 --seed 0 -o samples/
    latentserve-batch score incoming/ -o scores.csv

The options shared by every command (--url, --model, --api-key, --timeout, --concurrency,
--batch-size, --debug) go before or after the command. Requests run concurrently (bounded by
--concurrency), a progress bar counts images on a terminal, and an interrupted `encode` or
`score` resumes where it stopped when run again (see client.checkpoint); `decode` and `sample`
skip the PNGs already written. A failure is one sentence and exit status 1 (2 for a usage
error); --debug shows its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import glob
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from client.api import DEFAULT_URL, AsyncClient
from client.checkpoint import ChunkStore, JobMismatch
from client.errors import ConnectionFailed, LatentServeError

API_KEY_ENV = "LATENTSERVE_API_KEY"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def find_images(inputs: Sequence[str]) -> list[Path]:
    """Image files of the inputs (folders searched recursively, globs expanded), sorted."""
    found: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.add(path)
        else:
            found.update(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
    return sorted(found)


def chunked(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def run_bounded(jobs: Iterable[Callable[[], Awaitable[None]]], concurrency: int) -> None:
    """Runs the jobs with at most `concurrency` in flight; the first failure cancels the rest."""
    queue = list(jobs)
    queue.reverse()

    async def worker() -> None:
        while queue:
            await queue.pop()()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(queue))):
                group.create_task(worker())
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None


def image_names(args: argparse.Namespace) -> list[str]:
    files = find_images(args.inputs)
    if not files:
        raise FileNotFoundError(f"no images found in {' '.join(args.inputs)}")
    return [str(f) for f in files]


ChunkJob = Callable[[AsyncClient, list[str], int], Awaitable[dict[str, np.ndarray]]]


async def _chunked_job(
    args: argparse.Namespace, desc: str, names: list[str], job: dict, run_chunk: ChunkJob
) -> tuple[ChunkStore, int]:
    """Runs the chunks of `names` not finished by an earlier run, saving each as it lands."""
    store = ChunkStore(args.out, job)
    store.open(restart=args.restart)
    chunks = chunked(names, args.batch_size)
    todo = [i for i, chunk in enumerate(chunks) if not store.has(i, list(chunk))]
    done = len(names) - sum(len(chunks[i]) for i in todo)

    with tqdm(total=len(names), initial=done, unit="img", desc=desc, disable=None) as progress:
        async with _client(args) as client:

            async def one(index: int) -> None:
                chunk = list(chunks[index])
                store.save(index, chunk, await run_chunk(client, chunk, index))
                progress.update(len(chunk))

            await run_bounded([lambda i=i: one(i) for i in todo], args.concurrency)
    return store, len(chunks)


async def encode(args: argparse.Namespace) -> None:
    names = image_names(args)
    job = {
        "model": args.model,
        "batch_size": args.batch_size,
        "label": args.label,
        "sample": args.sample,
        "seed": args.seed,
    }

    async def encode_chunk(client: AsyncClient, chunk: list[str], index: int) -> dict:
        seed = None if args.seed is None else args.seed + index
        result = await client.encode(chunk, labels=args.label, sample=args.sample, seed=seed)
        return {"latents": result.latents, "model": np.asarray(result.model)}

    store, count = await _chunked_job(args, "encode", names, job, encode_chunk)
    _merge(store, count, args)
    print(f"wrote {len(names)} latents to {args.out}", file=sys.stderr)


async def score(args: argparse.Namespace) -> None:
    names = image_names(args)
    job = {"command": "score", "model": args.model, "batch_size": args.batch_size}
    if args.maps:
        job["maps"] = str(args.maps)
        args.maps.mkdir(parents=True, exist_ok=True)

    async def score_chunk(client: AsyncClient, chunk: list[str], index: int) -> dict:
        result = await client.score(chunk, maps=args.maps is not None)
        arrays = {
            "model": np.asarray(result.model),
            "score_name": np.asarray(result.score),
            **_score_columns(result, ""),
        }
        if result.corrected is not None:
            arrays |= _score_columns(result.corrected, "corrected_")
        if result.maps is not None:
            arrays |= _write_heatmaps(args.maps, chunk, index * args.batch_size, result.maps)
        return arrays

    store, count = await _chunked_job(args, "score", names, job, score_chunk)
    parts = [store.load(i) for i in range(count)]
    header = ["path", *(k for k in parts[0] if k not in ("names", "model", "score_name"))]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for part in parts:
            for row in zip(*(part["names" if k == "path" else k] for k in header), strict=True):
                writer.writerow([_cell(value) for value in row])
    store.remove()
    flagged = sum(int(part["anomalous"].sum()) for part in parts)
    print(
        f"wrote {len(names)} scores ({parts[0]['score_name']}, model {parts[0]['model']}) "
        f"to {args.out}: {flagged} anomalous",
        file=sys.stderr,
    )


def _write_heatmaps(folder: Path, chunk: list[str], start: int, maps) -> dict[str, np.ndarray]:
    """Each image's heatmap as `<folder>/<position>_<stem>.png`; the CSV's map columns."""
    files = [f"{start + i:06d}_{Path(name).stem}.png" for i, name in enumerate(chunk)]
    for file, png in zip(files, maps.heatmaps, strict=True):
        (folder / file).write_bytes(png)
    return {
        "anomalous_pixels": maps.anomalous_pixels,
        "pixel_threshold": maps.pixel_thresholds,
        "heatmap": np.asarray(files),
    }


def _score_columns(result, prefix: str) -> dict[str, np.ndarray]:
    return {
        f"{prefix}score": result.scores,
        f"{prefix}percentile": result.percentiles,
        f"{prefix}anomalous": result.anomalous,
    }


def _cell(value) -> str:
    if isinstance(value, np.bool_ | bool):
        return "true" if value else "false"
    if isinstance(value, np.floating | float):
        return f"{float(value):.6g}"
    return str(value)


def _merge(store: ChunkStore, count: int, args: argparse.Namespace) -> None:
    parts = [store.load(i) for i in range(count)]
    arrays = {
        "latents": np.concatenate([p["latents"] for p in parts]),
        "names": np.concatenate([p["names"] for p in parts]),
        "model": parts[0]["model"],
    }
    if args.label is not None:
        arrays["labels"] = np.full(len(arrays["names"]), args.label, dtype=np.int64)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays)
    store.remove()


def load_latents(path: Path) -> tuple[np.ndarray, list[str] | None, np.ndarray | None, str | None]:
    """(latents [N,D], names, labels, model) of an .npy array or an `encode` .npz."""
    if path.suffix == ".npy":
        return np.atleast_2d(np.load(path)), None, None, None
    with np.load(path) as archive:
        names = archive["names"].tolist() if "names" in archive.files else None
        labels = archive["labels"] if "labels" in archive.files else None
        model = str(archive["model"]) if "model" in archive.files else None
        return np.atleast_2d(archive["latents"]), names, labels, model


def png_names(count: int, names: list[str] | None, prefix: str) -> list[str]:
    """Sortable, unique PNG names: `000012_<stem>.png`, or `<prefix>000012.png`."""
    if names is None:
        return [f"{prefix}{i:06d}.png" for i in range(count)]
    return [f"{i:06d}_{Path(name).stem}.png" for i, name in enumerate(names)]


async def decode(args: argparse.Namespace) -> None:
    latents, names, labels, model = load_latents(args.latents)
    if args.label is not None:
        labels = np.full(len(latents), args.label)
    args.model = args.model or model
    outputs = png_names(len(latents), names, prefix="decoded_")
    starts = range(0, len(latents), args.batch_size)

    async def decode_chunk(client: AsyncClient, start: int) -> None:
        stop = start + args.batch_size
        chunk_labels = None if labels is None else [int(v) for v in labels[start:stop]]
        result = await client.decode(latents[start:stop], labels=chunk_labels)
        result.images.save(args.out, outputs[start:stop])

    await _images_job(args, "decode", outputs, starts, decode_chunk)


async def sample(args: argparse.Namespace) -> None:
    outputs = png_names(args.n, None, prefix="sample_")
    starts = range(0, args.n, args.batch_size)

    async def sample_chunk(client: AsyncClient, start: int) -> None:
        count = min(args.batch_size, args.n - start)
        # Chunk k draws with seed + k: a rerun or a resumed run writes the same images.
        seed = None if args.seed is None else args.seed + start // args.batch_size
        result = await client.sample(
            count, seed=seed, temperature=args.temperature, label=args.label
        )
        result.images.save(args.out, outputs[start : start + count])

    await _images_job(args, "sample", outputs, starts, sample_chunk)


async def _images_job(args, desc: str, outputs: list[str], starts: range, run_chunk) -> None:
    """Runs the chunks whose PNGs are not all written yet, with a progress bar."""

    def missing(start: int) -> bool:
        return any(
            not (args.out / name).exists() for name in outputs[start : start + args.batch_size]
        )

    todo = [start for start in starts if missing(start)]
    done = len(outputs) - sum(len(outputs[s : s + args.batch_size]) for s in todo)
    with tqdm(total=len(outputs), initial=done, unit="img", desc=desc, disable=None) as progress:
        async with _client(args) as client:

            async def one(start: int) -> None:
                await run_chunk(client, start)
                progress.update(len(outputs[start : start + args.batch_size]))

            await run_bounded([lambda s=s: one(s) for s in todo], args.concurrency)
    print(f"wrote {len(outputs)} images to {args.out}", file=sys.stderr)


def _client(args: argparse.Namespace) -> AsyncClient:
    return AsyncClient(
        args.url,
        model=args.model,
        timeout=args.timeout,
        max_connections=args.concurrency,
        api_key=args.api_key,
    )


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs at least 1, got {value}")
    return value


def shared_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The options of every command. Given to the top parser with their defaults and to each
    command's parser without (SUPPRESS), they may stand before or after the command."""

    def default(value):
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--url", default=default(DEFAULT_URL), help=f"service URL (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--model", default=default(None), help="model name (default: the server's default)"
    )
    parser.add_argument(
        "--api-key",
        default=default(os.environ.get(API_KEY_ENV)),
        help=f"key for a server that requires one (default: ${API_KEY_ENV}; the variable keeps "
        "it out of the process list)",
    )
    parser.add_argument(
        "--timeout", type=float, default=default(60.0), help="seconds per request (default 60)"
    )
    parser.add_argument(
        "--concurrency", type=positive, default=default(4), help="requests in flight (default 4)"
    )
    parser.add_argument(
        "--batch-size", type=positive, default=default(64), help="images per request (default 64)"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show a failure's traceback instead of one sentence",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentserve-batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shared_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        shared_options(sub, defaults=False)
        return sub

    enc = command("encode", "images -> .npz of latents and file names")
    enc.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    enc.add_argument("-o", "--out", type=Path, required=True, help="the .npz to write")
    enc.add_argument("--label", type=int, help="class of every image (conditional models)")
    enc.add_argument("--sample", action="store_true", help="a sampled z instead of the mean")
    enc.add_argument("--seed", type=int, help="seed of --sample (request k uses seed + k)")
    enc.add_argument("--restart", action="store_true", help="discard partial results")

    dec = command("decode", ".npy/.npz of latents -> folder of PNGs")
    dec.add_argument("latents", type=Path, help=".npy [N,D] or an .npz written by encode")
    dec.add_argument("-o", "--out", type=Path, required=True, help="folder for the PNGs")
    dec.add_argument("--label", type=int, help="class of every image (conditional models)")

    sco = command("score", "images -> CSV of anomaly scores (path, score, percentile, anomalous)")
    sco.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    sco.add_argument("-o", "--out", type=Path, required=True, help="the .csv to write")
    sco.add_argument("--restart", action="store_true", help="discard partial results")
    sco.add_argument(
        "--maps",
        type=Path,
        metavar="DIR",
        help="also write each image's anomaly heatmap (PNG) into DIR, named in the CSV",
    )

    smp = command("sample", "generated images -> folder of PNGs")
    smp.add_argument("-n", type=positive, default=16, help="number of images (default 16)")
    smp.add_argument("--seed", type=int, help="same seed, same images")
    smp.add_argument("--temperature", type=float, help="scale of the prior's spread")
    smp.add_argument("--label", type=int, help="class to generate (conditional models)")
    smp.add_argument("-o", "--out", type=Path, required=True, help="folder for the PNGs")
    return parser


COMMANDS = {"encode": encode, "decode": decode, "sample": sample, "score": score}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(COMMANDS[args.command](args))
    except KeyboardInterrupt:
        print(
            "latentserve-batch: interrupted; run the same command again to resume", file=sys.stderr
        )
        return 130
    except Exception as error:
        if args.debug:
            raise
        message, status = failure(error, args)
        print(f"latentserve-batch: {message}", file=sys.stderr)
        return status
    return 0


def failure(error: Exception, args: argparse.Namespace) -> tuple[str, int]:
    """One sentence for what went wrong, and the exit status (2: the command line's fault)."""
    if isinstance(error, ConnectionFailed):
        return f"{error} (is the server running? --url says where it is)", 1
    if isinstance(error, LatentServeError):
        return f"the server refused: {error}", 1
    if isinstance(error, JobMismatch):
        return str(error), 2
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror, 1
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text, 1


if __name__ == "__main__":
    sys.exit(main())
