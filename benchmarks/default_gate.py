"""Issue 27's bar for the default model, read from an `emomix eval` report of the test split
(``evaluate.bar.default_model_bar``), with every speaker x emotion beside the real renders.

    emomix eval --model natural --features data/demo_natural/features --split test \
        --max-sentences 8 --threads 2 --out runs/eval_natural_test
    python benchmarks/default_gate.py runs/eval_natural_test/report.json [--json gate.json]

Prints markdown: one row per speaker x emotion (synthesized / ground truth: voiced fraction
against the vocoded real mel, Whisper WER, DNSMOS P.808, F0 median, phones per second), the
ground-truth row per emotion, then the bar's lines. Exits 1 when a judged line fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emomix_cli.evaluate.bar import default_model_bar, speaker_wer
from emomix_cli.evaluate.schema import Report, Summary


def _f(value, spec=".2f") -> str:
    return "—" if value is None else format(value, spec)


def cell_rows(report: Report) -> list[str]:
    """Markdown rows: speaker, emotion, then synthesized / ground truth for each figure."""
    out = ["| speaker | emotion | voiced (synth / GT vocoded) | WER (synth / GT) | DNSMOS (synth / GT) "
           "| F0 median Hz | phones/s |", "|---|---|---:|---:|---:|---:|---:|"]
    blocks = [(s, rows) for s, rows in report.per_speaker.items()] + [("all", report.per_emotion)]
    for speaker, rows in blocks:
        for emotion, row in rows.items():
            s, g, c = row.synth, row.gt or Summary(), row.gt_vocoded or Summary()
            out.append(f"| {speaker} | {emotion} | {_f(s.voiced_fraction)} / {_f(c.voiced_fraction)} "
                       f"| {_f(s.wer)} / {_f(g.wer)} | {_f(s.p808)} / {_f(g.p808)} "
                       f"| {_f(s.f0_median, '.0f')} / {_f(g.f0_median, '.0f')} | {_f(s.rate, '.1f')} / {_f(g.rate, '.1f')} |")
    return out


def bar_rows(lines) -> list[str]:
    out = ["| check | value | threshold | result | note |", "|---|---:|---:|---|---|"]
    for line in lines:
        result = {True: "pass", False: "**FAIL**", None: "n/a"}[line.passed]
        out.append(f"| {line.check} | {_f(line.value, '.3f')} | {_f(line.threshold, '.3f')} | {result} | {line.note} |")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="report.json of `emomix eval` (the test split, with the judges)")
    parser.add_argument("--json", help="also write the bar's lines here")
    args = parser.parse_args(argv)
    report = Report.from_json(json.loads(Path(args.report).read_text()))
    config = report.config
    print(f"model {config.model}, split {config.split}, {config.n_sentences} sentences, guidance "
          f"{config.guidance} from {config.guidance_reference}, τ {config.temperature}, {config.steps} steps\n")
    print("\n".join(cell_rows(report)))
    print("\nWhisper WER per speaker: " + ", ".join(f"{s} {_f(w)}" for s, w in speaker_wer(report).items()) + "\n")
    lines = default_model_bar(report)
    print("\n".join(bar_rows(lines)))
    if args.json:
        Path(args.json).write_text(json.dumps([line.to_json() for line in lines], indent=1) + "\n")
    failed = [line for line in lines if line.passed is False]
    print(f"\n{len(failed)} of {sum(line.passed is not None for line in lines)} judged lines fail")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
