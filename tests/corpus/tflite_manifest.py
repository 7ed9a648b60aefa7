"""The TFLite corpus: the `.tflite` models that mediapipe==0.10.14's wheel ships under
mediapipe/modules/, pinned by the wheel's sha256 (tests/corpus/manifest.py WHEELS) and by file.
`python -m tests.corpus.fetch` fetches them with the ONNX corpus. They are float models with
float16 weights (DEQUANTIZE), two with sparse weights (DENSIFY), two with MediaPipe's
Convolution2DTransposeBias; face_landmark_with_attention needs three more custom ops
(Landmarks2TransformMatrix, TransformTensorBilinear, TransformLandmarks) that neither edgec nor
the LiteRT interpreter has, and is listed as not building (README)."""

from __future__ import annotations

from tests.corpus.manifest import CorpusModel

WHEEL = "mediapipe==0.10.14"  # the CPython 3.11 manylinux x86_64 wheel (this machine's kind)
WHEEL_SHA256 = "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"


def _m(name: str, folder: str, sha: str, kind: str, slow: bool = False) -> CorpusModel:
    return CorpusModel(name, WHEEL, f"mediapipe/modules/{folder}/{name}.tflite", sha, kind, {}, slow=slow)


TFLITE_MODELS = [
    _m("face_detection_short_range", "face_detection",
       "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8", "BlazeFace detector (MAX_POOL, PAD, CONCATENATION)"),
    _m("face_detection_full_range_sparse", "face_detection",
       "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
       "face detector with sparse weights (DENSIFY, DEPTH_TO_SPACE, RESIZE_BILINEAR)"),
    _m("face_landmark", "face_landmark",
       "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814", "face mesh (PRELU, MAX_POOL)"),
    _m("hand_landmark_full", "hand_landmark",
       "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3", "hand landmarks (MEAN, FULLY_CONNECTED)",
       slow=True),
    _m("hand_landmark_lite", "hand_landmark",
       "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6", "hand landmarks, lite"),
    _m("hand_recrop", "holistic_landmark",
       "67d996ce96f9d36fe17d2693022c6da93168026ab2f028f9e2365398d8ac7d5d", "hand re-crop (STRIDED_SLICE, fp32 weights)"),
    _m("iris_landmark", "iris_landmark",
       "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f", "iris landmarks (PRELU)"),
    _m("palm_detection_full", "palm_detection",
       "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54", "palm detector", slow=True),
    _m("palm_detection_lite", "palm_detection",
       "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18", "palm detector, lite (RESIZE_BILINEAR)"),
    _m("pose_detection", "pose_detection",
       "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c", "pose detector (DENSIFY, DEPTH_TO_SPACE)"),
    _m("pose_landmark_full", "pose_landmark",
       "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f", "pose landmarks (RESIZE_BILINEAR)",
       slow=True),
    _m("selfie_segmentation", "selfie_segmentation",
       "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
       "segmentation (HARD_SWISH, AVERAGE_POOL, Convolution2DTransposeBias)"),
    _m("selfie_segmentation_landscape", "selfie_segmentation",
       "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd", "segmentation, landscape (MEAN)"),
    _m("face_landmark_with_attention", "face_landmark",
       "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4",
       "face mesh with attention (three MediaPipe custom ops: does not build)"),
]
UNSUPPORTED = {"face_landmark_with_attention": "CUSTOM:Landmarks2TransformMatrix, CUSTOM:TransformLandmarks, "
                                               "CUSTOM:TransformTensorBilinear"}
