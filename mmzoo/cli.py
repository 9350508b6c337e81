"""The ``mmzoo`` command line: ``mmzoo list [PATTERN]``, ``mmzoo info NAME``."""

import argparse
import sys


def model_table(pattern="*"):
    """The Markdown table of the models (name, source, inputs, task) that the README shows."""
    import mmzoo

    rows = ["| model | source | inputs | task |", "|---|---|---|---|"]
    for name in mmzoo.list_models(pattern):
        card = mmzoo.describe(name)
        inputs = ", ".join(
            f"`{key}` {'x'.join(map(str, shape))} {dtype}" for key, (shape, dtype) in card.inputs.items()
        )
        rows.append(f"| `{name}` | {card.source} | {inputs} | {card.task} |")
    return "\n".join(rows)


def _list(args):
    import mmzoo

    if args.markdown:
        print(model_table(args.pattern))
        return
    for name in mmzoo.list_models(args.pattern):
        print(f"{name:24s} {mmzoo.registry.get_entry(name).summary}")


def _info(args):
    import mmzoo

    print(mmzoo.describe(args.name))
    if args.summary:
        print()
        mmzoo.build(args.name).summary(expand_nested=False)


def make_parser():
    parser = argparse.ArgumentParser(prog="mmzoo", description="A Keras 3 multimodal model zoo.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list the registered models")
    listing.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. '*fusion*'")
    listing.add_argument("--markdown", action="store_true", help="a Markdown table with sources and inputs")
    listing.set_defaults(run=_list)
    info = commands.add_parser("info", help="show a model's card (source, inputs, outputs, corrections)")
    info.add_argument("name")
    info.add_argument("--summary", action="store_true", help="also build the model and print its layers")
    info.set_defaults(run=_info)
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    try:
        args.run(args)
    except ValueError as error:
        print(f"mmzoo {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
