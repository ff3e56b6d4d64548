"""Whole networks with random weights, exported from tiny torch modules at opset 17 inside the test:
reference backend (before and after the passes) vs ONNX Runtime within 1e-4 relative L2."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from engine_testkit import assert_outputs_close, export_torch, run_ort, run_reference

from lanner.engine import infer_shapes, load_onnx, optimize

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: type | None = nn.ReLU) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, 1, act=None))
        self.down = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.down(x))


class Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(cin, mid, 1), conv_bn(mid, mid, 3, stride), conv_bn(mid, mid * 4, 1, act=None)
        )
        self.down = conv_bn(cin, mid * 4, 1, stride, act=None)

    def forward(self, x):
        return F.relu(self.body(x) + self.down(x))


class ResNetLike(nn.Module):
    def __init__(self, bottleneck: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 7, 2), nn.MaxPool2d(3, 2, 1))
        widths, blocks, cin = (16, 32, 64, 128), [], 16
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            if bottleneck:
                blocks.append(Bottleneck(cin, w // 2, stride))
                cin = w * 2
            else:
                blocks += [BasicBlock(cin, w, stride), BasicBlock(w, w, 1)]
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, act: type, se: bool = False) -> None:
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.expand = conv_bn(cin, mid, 1, act=act)
        self.dw = conv_bn(mid, mid, 3, stride, groups=mid, act=act)
        self.se = (
            nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Conv2d(mid, 8, 1), nn.ReLU(), nn.Conv2d(8, mid, 1), nn.Hardsigmoid()
            )
            if se
            else None
        )
        self.project = conv_bn(mid, cout, 1, act=None)

    def forward(self, x):
        y = self.dw(self.expand(x))
        if self.se is not None:
            y = y * self.se(y)
        y = self.project(y)
        return x + y if self.use_res else y


class MobileNetLike(nn.Module):
    def __init__(self, v3: bool = False) -> None:
        super().__init__()
        act = nn.Hardswish if v3 else nn.ReLU6
        self.stem = conv_bn(3, 16, 3, 2, act=act)
        cfg = [(16, 16, 1, 1), (16, 24, 2, 4), (24, 24, 1, 4), (24, 32, 2, 4), (32, 32, 1, 4)]
        self.blocks = nn.Sequential(
            *(InvertedResidual(a, b, s, e, act, se=v3 and i % 2 == 1) for i, (a, b, s, e) in enumerate(cfg))
        )
        self.head = nn.Sequential(
            conv_bn(32, 64, 1, act=act), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 10)
        )

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class C2f(nn.Module):
    """YOLOv8's C2f: split in two, a chain of bottlenecks, concat everything."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c = cout // 2
        self.cv1 = conv_bn(cin, 2 * self.c, 1, act=nn.SiLU)
        self.m = nn.ModuleList(
            nn.Sequential(conv_bn(self.c, self.c, 3, act=nn.SiLU), conv_bn(self.c, self.c, 3, act=nn.SiLU))
            for _ in range(2)
        )
        self.cv2 = conv_bn(4 * self.c, cout, 1, act=nn.SiLU)

    def forward(self, x):
        ys = list(self.cv1(x).split((self.c, self.c), 1))
        for m in self.m:
            ys.append(ys[-1] + m(ys[-1]))
        return self.cv2(torch.cat(ys, 1))


class YoloLike(nn.Module):
    """Backbone, a top-down neck (Resize + Concat), a decoupled head flattened to (N, 4+nc, anchors)."""

    def __init__(self, nc: int = 3) -> None:
        super().__init__()
        silu = nn.SiLU
        self.b1 = nn.Sequential(conv_bn(3, 16, 3, 2, act=silu), conv_bn(16, 32, 3, 2, act=silu), C2f(32, 32))
        self.b2 = nn.Sequential(conv_bn(32, 64, 3, 2, act=silu), C2f(64, 64))
        self.neck = C2f(96, 32)
        self.heads = nn.ModuleList(nn.Conv2d(c, 4 + nc, 1) for c in (32, 64))
        self.nc = nc

    def forward(self, x):
        p3 = self.b1(x)
        p4 = self.b2(p3)
        n3 = self.neck(torch.cat([F.interpolate(p4, scale_factor=2.0, mode="nearest"), p3], 1))
        outs = [h(f).view(f.shape[0], 4 + self.nc, -1) for h, f in zip(self.heads, (n3, p4))]
        y = torch.cat(outs, 2)
        box, cls = y.split((4, self.nc), 1)
        return torch.cat([box, cls.sigmoid()], 1)


class UNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.d1, self.d2, self.mid = conv_bn(3, 8), conv_bn(8, 16), conv_bn(16, 32)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, 2)
        self.u2 = conv_bn(32, 16)
        self.u1 = conv_bn(24, 8)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        s1 = self.d1(x)
        s2 = self.d2(F.max_pool2d(s1, 2))
        m = self.mid(F.max_pool2d(s2, 2))
        y = self.u2(torch.cat([self.up2(m), s2], 1))
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.sigmoid(self.out(self.u1(torch.cat([y, s1], 1))))


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Random weights and non-trivial BatchNorm statistics, so BN folding is really exercised."""
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return module.eval()


NETWORKS = {
    "resnet18_like": lambda: ResNetLike(),
    "resnet50_like": lambda: ResNetLike(bottleneck=True),
    "mobilenetv2_like": lambda: MobileNetLike(),
    "mobilenetv3_like": lambda: MobileNetLike(v3=True),
    "yolo_like": lambda: YoloLike(),
    "unet_like": lambda: UNetLike(),
}


@pytest.mark.parametrize("raw", [False, True], ids=["exporter_folded", "raw_export"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_matches_onnxruntime_before_and_after_passes(
    name: str, raw: bool, caplog: pytest.LogCaptureFixture
) -> None:
    module = randomize(NETWORKS[name](), seed=0)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    model = export_torch(module, torch.from_numpy(x), raw=raw)
    feeds = {"images": x}
    expected = run_ort(model, feeds)
    graph = load_onnx(model)
    assert_outputs_close(run_reference(graph, feeds), expected)

    with caplog.at_level(logging.INFO, logger="lanner.engine"):
        optimized = optimize(graph)
    assert_outputs_close(run_reference(optimized, feeds), expected)
    assert len(optimized.nodes) < len(graph.nodes)
    reinferred = infer_shapes(optimized)  # fused ops infer too, and agree with what the passes kept
    assert all(
        reinferred.values[k].shape == v.shape and reinferred.values[k].dtype == v.dtype
        for k, v in optimized.values.items()
    )
    assert "BatchNormalization" not in optimized.op_counts()
    assert f"Original: {len(graph.nodes)} layers → after fusion: {len(optimized.nodes)}" in caplog.text


def test_dynamic_batch_runs_any_batch_size() -> None:
    module = randomize(MobileNetLike(v3=True), seed=1)
    x = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    model = export_torch(module, torch.from_numpy(x[:1]), dynamic_batch=True)
    graph = optimize(load_onnx(model))
    assert graph.values["images"].shape == ("N", 3, 32, 32) and graph.values["output"].shape == ("N", 10)
    assert_outputs_close(run_reference(graph, {"images": x}), run_ort(model, {"images": x}))


def test_yolo_shape_subgraphs_fold_to_constants() -> None:
    module = randomize(YoloLike(), seed=2)
    model = export_torch(module, torch.zeros(1, 3, 64, 64), raw=True)
    graph = load_onnx(model)
    assert {"BatchNormalization", "Unsqueeze"} <= set(graph.op_counts())  # .view(n, c, -1) → Unsqueeze/Concat → Reshape
    optimized = optimize(graph)
    counts = optimized.op_counts()
    assert not {"Unsqueeze", "BatchNormalization", "Mul"} & set(counts)
    assert counts["FusedConv"] == 21 and counts["Sigmoid"] == 1  # 21 Conv+BN+SiLU; the class-score sigmoid stays
    assert optimized.values["output"].shape == (1, 7, 16 * 16 + 8 * 8)


def test_yolo_with_dynamic_batch_runs_shape_ops_at_run_time() -> None:
    module = randomize(YoloLike(), seed=3)
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    model = export_torch(module, torch.from_numpy(x[:1]), raw=True, dynamic_batch=True)
    graph = optimize(load_onnx(model))
    assert "Shape" in graph.op_counts()  # the batch size is only known at run time
    assert graph.values["output"].shape == ("N", 7, 8 * 8 + 4 * 4)
    assert_outputs_close(run_reference(graph, {"images": x}), run_ort(model, {"images": x}))


def test_to_onnx_round_trips_plain_and_optimized_graphs() -> None:
    from lanner.engine import to_onnx

    module = randomize(UNetLike(), seed=4)
    x = np.random.default_rng(4).standard_normal((1, 3, 32, 32)).astype(np.float32)
    model = export_torch(module, torch.from_numpy(x), raw=True)
    expected = run_ort(model, {"images": x})
    graph = load_onnx(model)
    assert_outputs_close(run_ort(to_onnx(graph), {"images": x}), expected)  # plain ONNX: ORT runs it
    optimized = optimize(graph)
    reloaded = load_onnx(to_onnx(optimized).SerializeToString())  # ai.lanner fused ops survive the trip
    assert reloaded.op_counts() == optimized.op_counts()
    assert_outputs_close(run_reference(reloaded, {"images": x}), expected)
