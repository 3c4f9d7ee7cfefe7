"""`latentserve-train` / `python -m training`: train, evaluate and draw from the command line.

    latentserve-train train --config training/configs/mnist-vae-mlp.toml --epochs 5
    latentserve-train evaluate runs/<run>/best.pt

Each subcommand is a `main(argv)` function named in COMMANDS ("module:function"), imported
only when chosen, so adding one (e.g. `export`) is one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import tomllib
import types
import typing
from pathlib import Path

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("training.cli:train_main", "train a model, evaluate it on the test split, draw it"),
    "evaluate": ("training.cli:evaluate_main", "evaluate and draw a saved checkpoint again"),
    "export": ("training.export:main", "export a checkpoint to a model folder for the service"),
    "reexport": (
        "training.zoo:reexport_main",
        "export model folders again from their own weights, in today's format",
    ),
    "zoo": ("training.zoo:main", "rebuild every shipped model of training/zoo.toml from data"),
    "defects": (
        "training.defects:main",
        "write the seeded pixel-level benchmark set: images with synthetic defects and masks",
    ),
    "evaluate-anomaly": (
        "training.benchmark:evaluate_main",
        "measure a model's anomaly scores and pixel maps on your own image folders",
    ),
    "benchmark-anomaly": (
        "training.benchmark:benchmark_main",
        "measure model folders on the seeded defect benchmark (per defect kind)",
    ),
}


class UsageError(ValueError):
    """A command line or config file that asks for something impossible: exit status 2."""


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. A failure is one sentence on stderr and exit status 1 (2 for a
    usage error), its traceback only with --debug (anywhere on the line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"latentserve-train: unknown command {argv[0]!r}\n", file=sys.stderr)
        print(_usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    target, _ = COMMANDS[argv[0]]
    module, function = target.split(":")
    try:
        return int(getattr(importlib.import_module(module), function)(argv[1:]) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"latentserve-train {argv[0]}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        print(f"latentserve-train {argv[0]}: error: {one_sentence(error)}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1


def one_sentence(error: BaseException) -> str:
    """What went wrong, in the words a person acts on: no type names, no traceback."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.strerror}: {error.filename}"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _usage() -> str:
    lines = ["usage: latentserve-train COMMAND [options]   (COMMAND --help for its options)", ""]
    width = max(map(len, COMMANDS))
    lines += [f"  {name:<{width}} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "--debug anywhere on the line shows a failure's traceback."]
    return "\n".join(lines)


# ---------------------------------------------------------------- train


def _base_type(annotation) -> type:
    """The non-None type inside `X | None` (TrainConfig's annotations are strings)."""
    hint = eval(annotation, vars(typing), {}) if isinstance(annotation, str) else annotation  # noqa: S307
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return typing.get_origin(hint) or hint


def _parse_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--option wants KEY=VALUE, not {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word such as gaussian
    return key.strip(), parsed


def train_parser() -> argparse.ArgumentParser:
    from training.data import IMAGE_FOLDER_LAYOUT
    from training.train import TrainConfig

    parser = argparse.ArgumentParser(
        prog="latentserve-train train",
        description="Train an autoencoder, evaluate its best checkpoint on the test split, "
        "and draw its pictures. Flags override the config file; the file overrides defaults.",
        epilog=f"Your own images: --dataset image-folder --data-root FOLDER; "
        f"{IMAGE_FOLDER_LAYOUT}. 10% of every class goes to validation and 10% to test. "
        "--debug shows a failure's traceback.",
    )
    parser.add_argument("--config", type=Path, help="a TOML file of the options below")
    parser.add_argument("--no-plots", action="store_true", help="skip the pictures")
    parser.add_argument("--tsne", action="store_true", help="add a t-SNE map to the scatter")
    for spec in dataclasses.fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        kind = _base_type(spec.type)
        help_text = f"{spec.metadata['help']} (default: {_default_text(spec)})"
        if spec.name == "model_options":
            parser.add_argument(
                "--option",
                dest="model_options",
                action="append",
                type=_parse_option,
                metavar="KEY=VALUE",
                help=help_text,
            )
        elif kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif kind is list:
            parser.add_argument(flag, type=int, nargs=3, metavar=("C", "H", "W"), help=help_text)
        else:
            parser.add_argument(flag, type=kind, help=help_text)
    return parser


def _default_text(spec: dataclasses.Field) -> str:
    if spec.default_factory is not dataclasses.MISSING:
        return str(spec.default_factory())
    return "unset" if spec.default is None else str(spec.default)


def config_from_args(args: argparse.Namespace):
    """The run's config; what cannot be a valid run is a UsageError, before any data loads."""
    from training.data import DATASETS, IMAGE_FOLDER_LAYOUT
    from training.models import ARCHITECTURES, FAMILIES
    from training.train import TrainConfig

    values = {} if args.config is None else _read_config(args.config)
    for spec in dataclasses.fields(TrainConfig):
        given = getattr(args, spec.name)
        if given is None:
            continue
        if spec.name == "model_options":
            given = {**values.get("model_options", {}), **dict(given)}
        values[spec.name] = given
    try:
        config = TrainConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{args.config or 'the options'}: {error}") from error
    choices = {"dataset": DATASETS, "family": FAMILIES, "architecture": ARCHITECTURES}
    for key, known in choices.items():
        if getattr(config, key) not in known:
            raise UsageError(
                f"unknown {key} {getattr(config, key)!r}; choose one of {', '.join(known)}"
            )
    if config.dataset == "image-folder" and not config.data_root:
        raise UsageError(f"--dataset image-folder needs --data-root FOLDER; {IMAGE_FOLDER_LAYOUT}")
    return config


def _read_config(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except OSError as error:
        raise UsageError(f"cannot read the config file {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path} is not valid TOML: {error}") from error


def train_main(argv: list[str]) -> int:
    from training.plots import draw_all
    from training.train import load_checkpoint, load_data, train

    args = train_parser().parse_args(argv)
    config = config_from_args(args)
    result = train(config)
    print(f"run folder:      {result.run_dir}")
    print(f"best checkpoint: {result.best_checkpoint} (resume from {result.last_checkpoint})")
    print(f"history:         {result.run_dir / 'history.csv'}")
    if result.test_metrics:
        print(f"test metrics:    {result.run_dir / 'metrics.json'}, {result.run_dir / 'report.md'}")
        print(json.dumps(result.test_metrics, indent=2))
    if not args.no_plots:
        model, _ = load_checkpoint(result.best_checkpoint)
        pictures = draw_all(model, load_data(config), result.run_dir, args.tsne, config.seed)
        for name, path in pictures.items():
            print(f"{name + ':':<17}{path}")
    return 0


# ---------------------------------------------------------------- evaluate


def evaluate_main(argv: list[str]) -> int:
    from training.evaluate import evaluate
    from training.plots import draw_all
    from training.train import TrainConfig, load_checkpoint, load_data

    parser = argparse.ArgumentParser(
        prog="latentserve-train evaluate",
        description="Evaluate a checkpoint on the test split of the data it was trained on "
        "and draw its pictures.",
    )
    parser.add_argument("checkpoint", type=Path, help="a best.pt or last.pt file")
    parser.add_argument("--out", type=Path, help="output folder (default: the checkpoint's)")
    parser.add_argument("--data-root", help="where the dataset lives, if it moved")
    parser.add_argument("--iw-samples", type=int, help="importance samples for IW-NLL")
    parser.add_argument("--no-plots", action="store_true", help="skip the pictures")
    parser.add_argument("--tsne", action="store_true", help="add a t-SNE map to the scatter")
    args = parser.parse_args(argv)
    model, checkpoint = load_checkpoint(args.checkpoint)
    config = TrainConfig.from_dict(checkpoint["config"])
    config.data_root = args.data_root or config.data_root
    config.iw_samples = args.iw_samples if args.iw_samples is not None else config.iw_samples
    splits = load_data(config)
    out = args.out or args.checkpoint.parent
    metrics = evaluate(
        model,
        splits,
        out,
        reconstruction=config.reconstruction,
        iw_samples=config.iw_samples,
        seed=config.seed,
    )
    print(json.dumps(metrics, indent=2))
    print(f"metrics and report: {out / 'metrics.json'}, {out / 'report.md'}")
    if not args.no_plots:
        for name, path in draw_all(model, splits, out, args.tsne, config.seed).items():
            print(f"{name + ':':<17}{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
