"""Clips per second: in-graph batched log-mel (tf.data + LogMelSpectrogram) against per-clip librosa.

Both sides compute the same features (checked on the first clips before timing: they agree
to a fraction of a dB) from the same clips held in memory, so the benchmark measures feature
extraction, not file decoding:

- graph, in tf.data: ``tf.data.Dataset.from_tensor_slices(waveforms).batch(B)
  .map(LogMelSpectrogram(...), num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)``, each batch
  fetched as a NumPy array;
- graph, in the model: the same dataset without the map (``batch`` then ``prefetch``), the
  layer applied to each batch in a ``tf.function``, as it runs when it is a model's first
  layer. TensorFlow runs ops inside tf.data map functions with less parallelism than in a
  ``tf.function`` (measured here: the FFT alone about 2x slower), so this is the faster way;
- librosa: ``power_to_db(librosa.feature.melspectrogram(y=clip, ...))`` clip by clip in a
  Python loop (the document 004 §3.3 way, corrected), twice: with NumPy's BLAS threads as
  they come (the default a user gets), and with BLAS held to one thread (threadpoolctl).
  The per-clip mel projection is a small matrix product; on 2 busy cores multi-threaded
  OpenBLAS spends more time synchronising than computing, so the one-thread loop is
  librosa's fairest (fastest) figure, and the speed-up against it the honest one.

The default parameters are LogMelSpectrogram's, which are librosa's own defaults (the
ones document 004 called): n_fft 2048, hop 512, 128 mel bands, here at 16 kHz.

One untimed warm-up pass each (tracing, FFT plans, librosa's caches), then ``--repeats``
timed passes, interleaved (the order rotates each repeat) so that a slow patch of the
machine hits every side; the medians are compared.

    python benchmarks/audio_features.py            # 512 one-second clips, under a minute on 2 cores
    python benchmarks/audio_features.py --quick    # 64 clips, 3 repeats: a few seconds
    python benchmarks/audio_features.py --fft-length 512 --hop-length 160 --mel-bins 64   # speech settings
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import interleaved, median, report, speed_row  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=512, help="clips per pass (default 512)")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each clip (default 1.0)")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--fft-length", type=int, default=2048)
    parser.add_argument("--hop-length", type=int, default=512)
    parser.add_argument("--mel-bins", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per side (default 5)")
    parser.add_argument("--quick", action="store_true", help="64 clips, 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.clips, args.repeats = min(args.clips, 64), min(args.repeats, 3)
    for name in ("clips", "sample_rate", "fft_length", "hop_length", "mel_bins", "batch_size", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.seconds * args.sample_rate <= args.fft_length // 2:
        parser.error("--seconds too short for --fft-length (centred frames need more samples)")
    return args


def make_clips(count, samples, rate, seed=0):
    """Tones, chirps and noise at random levels: ``(count, samples)`` float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    frequency = rng.uniform(100, rate / 4, (count, 1))
    sweep = rng.uniform(0, rate / 8, (count, 1))
    clips = rng.uniform(0.05, 0.5, (count, 1)) * np.sin(2 * np.pi * (frequency + sweep * t) * t)
    clips += rng.uniform(0.001, 0.05, (count, 1)) * rng.standard_normal((count, samples))
    return np.clip(clips, -1, 1).astype(np.float32)


LABELS = {
    "graph": "graph: LogMelSpectrogram mapped in tf.data",
    "graph, in the model": "graph: LogMelSpectrogram in the model",
    "librosa": "librosa per clip, BLAS threads as they come",
    "librosa, 1 BLAS thread": "librosa per clip, BLAS held to one thread",
}


def measure(args, log=print):
    """Time every side; print the details through ``log``; return the result rows."""
    import librosa
    import tensorflow as tf

    from mmzoo.layers.audio import LogMelSpectrogram

    samples = int(round(args.seconds * args.sample_rate))
    clips = make_clips(args.clips, samples, args.sample_rate)
    params = dict(sample_rate=args.sample_rate, fft_length=args.fft_length, hop_length=args.hop_length,
                  num_mel_bins=args.mel_bins, min_freq=0.0, max_freq=None, top_db=80.0)
    layer = LogMelSpectrogram(**params)
    librosa_params = dict(sr=args.sample_rate, n_fft=args.fft_length, hop_length=args.hop_length,
                          window="hann", center=True, pad_mode="reflect", power=2.0,
                          n_mels=args.mel_bins, fmin=0.0, fmax=args.sample_rate / 2, htk=True, norm=None)

    dataset = (
        tf.data.Dataset.from_tensor_slices(clips)
        .batch(args.batch_size)
        .map(layer, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )

    def run_graph():
        return [batch.numpy() for batch in dataset]

    batches = tf.data.Dataset.from_tensor_slices(clips).batch(args.batch_size).prefetch(tf.data.AUTOTUNE)
    in_model = tf.function(layer)

    def run_in_model():
        return [in_model(batch).numpy() for batch in batches]

    def run_librosa():
        return [
            librosa.power_to_db(librosa.feature.melspectrogram(y=clip, **librosa_params),
                                ref=1.0, amin=1e-10, top_db=80.0).T
            for clip in clips
        ]

    def run_librosa_one_thread():
        with threadpool_limits(limits=1, user_api="blas"):
            return run_librosa()

    try:
        from threadpoolctl import threadpool_limits  # installed with librosa (scikit-learn)
    except ImportError:
        threadpool_limits = None
    sides = {"graph": run_graph, "graph, in the model": run_in_model, "librosa": run_librosa}
    if threadpool_limits is not None:
        sides["librosa, 1 BLAS thread"] = run_librosa_one_thread

    # The check that both sides compute the same thing (also a first warm-up).
    graph_features = np.concatenate(run_graph())
    np.testing.assert_allclose(np.concatenate(run_in_model()), graph_features, atol=0.01)  # round-off
    reference = run_librosa()
    difference = max(float(np.abs(graph_features[i] - reference[i]).max()) for i in range(min(8, len(clips))))
    if difference > 0.25:
        raise SystemExit(f"the two sides disagree by {difference:.3f} dB: not the same features")

    times = interleaved(sides, args.repeats)
    rates = {name: args.clips / median(times[name]) for name in sides}

    log(
        f"audio: {args.clips} clips of {args.seconds:g} s at {args.sample_rate} Hz -> "
        f"{graph_features.shape[1]} frames x {args.mel_bins} mel bins "
        f"(fft {args.fft_length}, hop {args.hop_length}); batch {args.batch_size}; "
        f"median of {args.repeats} interleaved passes after a warm-up; "
        f"features agree with librosa to {difference:.3f} dB (max abs, first clips)"
    )
    for name in sides:
        log(f"  {LABELS[name]:45s} {rates[name]:9.1f} clips/s  [{', '.join(f'{t:.3f}' for t in times[name])}] s")
    rows = [speed_row("audio log-mel: in the model vs librosa per clip", rates["graph, in the model"],
                      rates["librosa"], "clips/s"),
            speed_row("audio log-mel: tf.data map vs librosa per clip", rates["graph"], rates["librosa"], "clips/s")]
    if "librosa, 1 BLAS thread" in rates:
        rows.append(speed_row("audio log-mel: in the model vs librosa, 1 BLAS thread",
                              rates["graph, in the model"], rates["librosa, 1 BLAS thread"], "clips/s"))
    return rows


def main(argv=None):
    rows = measure(parse_args(argv))
    report(rows, "(ratio = ours / baseline; target: at least 10x)")
    return rows


if __name__ == "__main__":
    main()
