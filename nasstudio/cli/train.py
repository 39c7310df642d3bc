"""Training, latency measurement and the supernet."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nasstudio.cli.common import (
    EXECUTION,
    MAX_COUNT,
    MAX_VOCAB_SIZE,
    CliError,
    open_from_args,
    resolve_task,
    run_job,
    whole_number,
)
from nasstudio.store import Project
from nasstudio.store.importers import counted

# The jobs behind these commands load torch: they are imported inside the commands.


def corpus_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The ``data.spec`` corpus spec of --corpus, --corpus-path, --src and --tgt."""
    if args.corpus == "demo":
        return {"kind": "demo"}
    if not args.corpus_path:
        raise CliError(f"--corpus {args.corpus} needs --corpus-path FOLDER")
    return {"kind": args.corpus, "path": args.corpus_path, "src": args.src, "tgt": args.tgt}


def device_option(requested: str | None) -> str:
    """--device checked against this machine; by default CUDA when there is a GPU."""
    import torch

    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise CliError(f"--device {requested}: expected cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise CliError(f"--device {requested}: expected cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CliError(f"--device {requested}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CliError(f"--device {requested}: this machine has {torch.cuda.device_count()} GPUs")
    return requested


def _arch_ids(project: Project, task: str, args: argparse.Namespace) -> list[str]:
    """--ids (checked against the task) or --all, the first --limit of them."""
    known = [a.id for a in project.architectures(task)]
    missing = sorted(set(args.ids or ()) - set(known))
    if missing:
        raise CliError(f"not in task '{task}': {', '.join(missing)}")
    ids = args.ids or known
    return ids[: args.limit] if args.limit else ids


def _train_config(args: argparse.Namespace, supernet: bool = False) -> dict[str, Any]:
    """TrainConfig fields of --recipe, overridden by the flags given. A budget flag replaces
    the budget (2,000 steps by default) rather than adding to it."""
    from nasstudio.train.config import recipe_settings

    config = recipe_settings(args.recipe, supernet)
    config.update(
        (key, value)
        for key, value in (
            ("lr", args.lr),
            ("warmup_steps", args.warmup),
            ("max_tokens", args.max_tokens),
            ("seed", args.seed),
        )
        if value is not None
    )
    budget = {"max_steps": args.steps, "max_epochs": args.epochs, "max_minutes": args.minutes}
    if any(value is not None for value in budget.values()):
        config.update(budget)
    return config


def cmd_train(args: argparse.Namespace) -> int:
    from nasstudio.train.job import train_job

    project = open_from_args(args)
    task = resolve_task(project, args.task)
    ids = _arch_ids(project, task, args)
    corpus, device, config = corpus_spec(args), device_option(args.device), _train_config(args)
    if args.beam is not None:
        config["beam"] = args.beam
    if args.length_penalty is not None:
        config["length_penalty"] = args.length_penalty
    results = []
    for n, arch_id in enumerate(ids, 1):
        scores = run_job(
            project,
            "train",
            f"Train {arch_id} ({n}/{len(ids)})",
            train_job,
            task=task,
            arch_id=arch_id,
            corpus=corpus,
            config=config,
            device=device,
            vocab_size=args.vocab_size,
            vocab_type=args.vocab_type,
        )
        if scores is None:
            break
        results.append({"id": arch_id, **scores})
        if not args.json:
            bleu = "  ".join(f"{m} {v:.2f}" for m, v in scores.items() if m != "task")
            print(f"{arch_id}  {bleu}  (task {scores['task']})")
    if args.json:
        print(json.dumps(results, indent=1))
    return 0 if len(results) == len(ids) else 1


def cmd_latency(args: argparse.Namespace) -> int:
    from nasstudio.jobs.latency import latency_job

    project = open_from_args(args)
    task = resolve_task(project, args.task)
    ids = _arch_ids(project, task, args)
    device = device_option(args.device)
    estimates = run_job(
        project,
        "latency",
        f"Measure the latency of {counted(len(ids), 'architecture')} on {device}",
        latency_job,
        task=task,
        arch_ids=ids,
        device=device,
        beam=args.beam,
        repeats=args.repeats,
        warmup=args.warmup,
        threads=args.threads,
    )
    if estimates is None:
        return 1
    rows = [
        {
            "id": arch_id,
            "task": task,
            "device": e.device,
            "latency_ms": e.total_ms,
            "encoder_ms": e.encoder_ms,
            "decoder_ms": e.decoder_ms,
            "encoder_std_ms": e.encoder_std_ms,
            "decoder_std_ms": e.decoder_std_ms,
        }
        for arch_id, e in estimates.items()
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"latency on {rows[0]['device'] if rows else device} (beam {args.beam}), ms")
    for r in rows:
        print(
            f"{r['id']}  {r['latency_ms']:9.2f}  (encoder {r['encoder_ms']:.2f} "
            f"± {r['encoder_std_ms']:.2f}, decoder {r['decoder_ms']:.2f} "
            f"± {r['decoder_std_ms']:.2f})"
        )
    return 0


def cmd_supernet_train(args: argparse.Namespace) -> int:
    from nasstudio.train.supernet import supernet_train_job

    project = open_from_args(args)
    task = resolve_task(project, args.task)
    result = run_job(
        project,
        "supernet-train",
        f"Train the supernet of {task}",
        supernet_train_job,
        task=task,
        corpus=corpus_spec(args),
        config=_train_config(args, supernet=True),
        device=device_option(args.device),
        vocab_size=args.vocab_size,
        checkpoint=args.out,
        vocab_type=args.vocab_type,
    )
    if result is None:
        return 1
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    loss = result["best_valid_loss"]
    print(
        f"supernet at step {result['step']}: {result['checkpoint']}"
        + (f" (best valid loss of the largest {loss:.3f})" if loss is not None else "")
    )
    return 0


def cmd_supernet_score(args: argparse.Namespace) -> int:
    from nasstudio.predict.supernet import supernet_score_job
    from nasstudio.train.result_task import result_task_name

    project = open_from_args(args)
    task = resolve_task(project, args.task)
    ids = _arch_ids(project, task, args)
    corpus = corpus_spec(args)
    scores = run_job(
        project,
        "supernet-score",
        f"Score {counted(len(ids), 'architecture')} with {Path(args.checkpoint).name}",
        supernet_score_job,
        task=task,
        arch_ids=ids,
        checkpoint=args.checkpoint,
        corpus=corpus,
        device=device_option(args.device),
        bleu_sentences=args.bleu_sentences,
    )
    if scores is None:
        return 1
    # The supernet's vocabulary is the corpus default unless it was trained with --vocab-size:
    # the job log names the task either way.
    target = result_task_name(project, project.task(task), corpus)
    rows = [{"id": arch_id, "task": target, **s} for arch_id, s in scores.items()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"{r['id']}  valid_loss {r['valid_loss']:.3f}  bleu_valid {r['bleu_valid']:.2f}")
    return 0


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", help="task of the architectures (needed when the project has several)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", nargs="+", help="architecture ids")
    which.add_argument("--all", action="store_true", help="every architecture of the task")
    p.add_argument("--limit", type=int, help="only the first N of them")


def add_device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", help="cpu, cuda or cuda:N (default: cuda when there is a GPU, else cpu)"
    )


def add_corpus_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "corpus (results go to its task: demo, or <folder>-<src><tgt>; plus -<space> and "
        "-v<vocabulary size> when that task has others)"
    )
    g.add_argument(
        "--corpus",
        choices=("demo", "multi30k", "folder"),
        default="demo",
        help="the built-in synthetic pair, Multi30k as distributed, or a folder of "
        "{train,valid,test}.<lang>[.gz] files (default demo)",
    )
    g.add_argument("--corpus-path", help="the corpus folder (multi30k, folder)")
    g.add_argument("--src", default="en", help="source language (default en)")
    g.add_argument("--tgt", default="de", help="target language (default de)")


def _add_training_options(p: argparse.ArgumentParser, supernet: bool = False) -> None:
    from nasstudio.train.config import RECIPES, describe_recipe

    g = p.add_argument_group("training (a budget flag replaces the default of 2,000 steps)")
    g.add_argument(
        "--recipe",
        choices=RECIPES,
        default="default",
        help="default: the CPU-friendly defaults; hat: HAT's configs "
        f"({'supertransformer/space0.yml' if supernet else 'subtransformer/common.yml'}, "
        f"test.sh): {describe_recipe('hat', supernet)}. Explicit options override it "
        "(default: default)",
    )
    g.add_argument("--steps", type=whole_number(MAX_COUNT), help="optimiser steps")
    g.add_argument("--epochs", type=whole_number(MAX_COUNT), help="passes over the training data")
    g.add_argument("--minutes", type=float, help="wall-clock minutes")
    g.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    g.add_argument("--warmup", type=whole_number(MAX_COUNT), help="warm-up steps (default 200)")
    g.add_argument(
        "--max-tokens", type=whole_number(MAX_COUNT), help="padded tokens per batch (default 4096)"
    )
    g.add_argument("--seed", type=int, help="random seed (default 1)")
    g.add_argument(
        "--vocab-size",
        type=whole_number(MAX_VOCAB_SIZE),
        help="subwords (default: the task's vocabulary size)",
    )
    g.add_argument("--vocab-type", choices=("bpe", "unigram"), default="bpe", help="default bpe")
    add_device_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def add_training_commands(add, common: argparse.ArgumentParser) -> None:
    """``train``, ``latency`` and ``supernet train|score``."""
    p = add(
        "train",
        cmd_train,
        "train architectures from scratch on a corpus, one after another, and record their "
        "BLEU on valid and test (Ctrl+C keeps a checkpoint; the same command resumes it)",
    )
    _add_selection_options(p)
    add_corpus_options(p)
    _add_training_options(p)
    p.add_argument(
        "--beam", type=whole_number(MAX_COUNT), help="beam of the final BLEU (default 5; 1: greedy)"
    )
    p.add_argument(
        "--length-penalty",
        type=float,
        help="beam scores are log p / length ** this (default 1.0; HAT: 0.6)",
    )

    p = add(
        "latency",
        cmd_latency,
        "measure the latency of architectures on this machine with HAT's protocol "
        "(random weights, 30-token source, 30 decoder steps) and record it as latency_ms",
    )
    _add_selection_options(p)
    add_device_option(p)
    p.add_argument("--beam", type=int, default=5, help="beam rows decoded (default 5)")
    p.add_argument("--repeats", type=int, default=20, help="timed runs (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's setting)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("supernet", None, "train a weight-sharing supernet, and score architectures with it")
    actions = p.add_subparsers(dest="supernet_command", metavar="ACTION", required=True)
    q = actions.add_parser(
        "train",
        parents=[common],
        help="train the task space's SuperTransformer with the sandwich rule",
        description="Train the SuperTransformer of the task's search space on a corpus with "
        "the sandwich rule (largest, smallest and one random sub-architecture per step). "
        "Ctrl+C keeps the checkpoint; the same command resumes it.",
    )
    q.set_defaults(handler=cmd_supernet_train)
    q.add_argument("--task", help="task whose search space to train (needed when several)")
    q.add_argument("--out", "-o", help="checkpoint file (default: beside the project)")
    add_corpus_options(q)
    _add_training_options(q, supernet=True)
    q = actions.add_parser(
        "score",
        parents=[common],
        help="record the valid loss and BLEU of architectures with inherited weights",
        description="Score architectures with the weights they inherit from a supernet "
        "checkpoint: validation loss and greedy BLEU, recorded as supernet predictions.",
    )
    q.set_defaults(handler=cmd_supernet_score)
    _add_selection_options(q)
    q.add_argument("--checkpoint", required=True, help="supernet checkpoint (supernet train)")
    q.add_argument(
        "--bleu-sentences", type=int, default=200, help="validation sentences decoded (200)"
    )
    add_corpus_options(q)
    add_device_option(q)
    q.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_translate(args: argparse.Namespace) -> int:
    from nasstudio.train.translate import (
        checkpoint_files,
        no_checkpoint_reason,
        read_test_files,
        translate_job,
    )

    project = open_from_args(args)
    task = resolve_task(project, args.task)
    if args.id not in project.architecture_ids(task):
        raise CliError(f"not in task '{task}': {args.id}")
    files = read_test_files(args.input, args.ref, args.name)  # before any work: counts agree
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise CliError(f"{args.checkpoint}: file not found; expected a checkpoint of train")
    # Jobs on a Ray cluster keep their checkpoints in its storage.
    root = EXECUTION.ray_storage if EXECUTION.executor == "ray" else None
    if args.checkpoint is None and not checkpoint_files(project, args.id, root):
        raise CliError(no_checkpoint_reason(project, task, args.id, root))
    if args.output is not None and not Path(args.output).resolve().parent.is_dir():
        raise CliError(f"{args.output}: its folder does not exist")
    result = run_job(
        project,
        "translate",
        f"Translate {Path(args.input).name} with {args.id}",
        translate_job,
        task=task,
        arch_id=args.id,
        source=_absolute(args.input),
        output=_absolute(args.output),
        reference=_absolute(args.ref),
        name=files.test_set.name if files.test_set else None,
        beam=args.beam,
        length_penalty=args.length_penalty,
        device=device_option(args.device),
        checkpoint=_absolute(args.checkpoint),
    )
    if result is None:
        return 1
    if args.output is None and not args.json:
        sys.stdout.writelines(f"{line}\n" for line in result["hypotheses"])
    if args.json:
        if args.output is not None:
            del result["hypotheses"]
        print(json.dumps({"id": args.id, "task": task, **result}, indent=1))
        return 0
    # With the translations on stdout, the scores go to stderr: `> file` keeps only text.
    scores = sys.stdout if args.output is not None else sys.stderr
    for metric, score in result.get("scores", {}).items():
        print(
            f"{result['test_set']} ({result['test_set_digest']}): {metric} "
            f"{score['score']:.2f}  {score['signature']}",
            file=scores,
        )
    return 0


def _absolute(path: str | None) -> str | None:
    """A path the worker (another process, or a cluster node) finds whatever its folder."""
    return str(Path(path).resolve()) if path is not None else None


def add_translate_command(add) -> None:
    """``translate``."""
    p = add(
        "translate",
        cmd_translate,
        "translate a file (one sentence a line) with an architecture's trained checkpoint; "
        "with --ref, print sacrebleu BLEU and the tokenised BLEU with their signatures and "
        "record them as measurements of that test set (a score on one test set never "
        "replaces another's)",
    )
    p.add_argument(
        "--task", help="task the architecture's BLEU is recorded in (needed when several)"
    )
    p.add_argument("--id", required=True, metavar="ARCH", help="architecture id")
    p.add_argument("--input", required=True, metavar="SRC", help="source file (plain or .gz)")
    p.add_argument("--output", "-o", metavar="HYP", help="translations (default: stdout)")
    p.add_argument("--ref", metavar="REF", help="reference translations, one per source line")
    p.add_argument(
        "--name", help="the test set's name (default: the input file's stem, e.g. test2016)"
    )
    p.add_argument(
        "--beam",
        type=whole_number(MAX_COUNT),
        help="beam size (default: that of the recorded BLEU, else 5; 1: greedy)",
    )
    p.add_argument(
        "--length-penalty",
        type=float,
        help="beam scores are log p / length ** this (default: that of the recorded BLEU, "
        "else 1.0; HAT and llmas use 0.6)",
    )
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="checkpoint of train to use (default: the one behind the task's recorded BLEU, "
        "else the newest beside the project)",
    )
    add_device_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
