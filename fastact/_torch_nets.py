"""Real PyTorch networks with PReLU for fastact's torch benchmark
(``python -m fastact bench --torch``), with random weights: no downloads.

Written from the architectures:

- ArcFace's iResNet-50 (the face-recognition backbone of insightface's
  arcface_torch): 112x112 RGB in, 512-d embedding out; residual stages of
  [3, 4, 14, 3] "improved" basic blocks (BN -> conv3x3 -> BN -> PReLU ->
  conv3x3 (stride) -> BN, plus a 1x1 conv + BN shortcut where the shape
  changes); stem conv3x3(3, 64) -> BN -> PReLU; head BN -> flatten ->
  dropout -> Linear(512*7*7, 512) -> BatchNorm1d.  25 per-channel PReLUs (1 in
  the stem, one per block), each fed by a BatchNorm2d.
- MobileFaceNet (Chen et al., 2018, as arcface_torch builds it: width scale
  2, blocks (1, 4, 6, 2)): ConvBlock = conv -> BN -> PReLU, LinearBlock =
  conv -> BN, DepthWise = 1x1 ConvBlock -> depthwise ConvBlock ->
  1x1 LinearBlock (with a residual inside the Residual stages), global
  depthwise conv head and a 512-d embedding.  33 per-channel PReLUs, each
  fed by a BatchNorm2d.
- ConvTasNet (Luo and Mesgarani, 2019; the non-causal configuration of
  torchaudio's ``conv_tasnet_base``: 512 encoder filters of 16 samples,
  stride 8; a mask network of 3 stacks of 8 dilated 1-D conv blocks with
  128 bottleneck and 512 hidden channels; ReLU masks; a transposed-conv
  decoder) separating 2 sources from 1 s of 8 kHz audio.  Each block is
  1x1 conv -> PReLU -> global layer norm (GroupNorm of one group) ->
  depthwise dilated conv -> PReLU -> global layer norm, then 1x1 convs to
  the residual and skip paths.  49 PReLUs with one shared slope each (two
  per block, one before the mask's output conv), fed by 1-D convolutions,
  none by a BatchNorm; the blocks' PReLUs run on (N, 512, 1001) tensors.
  (torchaudio's own wheel on PyPI is a CUDA build that does not load
  beside a CPU build of torch, hence a definition here.)

Parameters are random from a fixed seed; PReLU weights spread around 0.25
(no two channels alike) and BatchNorm running statistics, scales and shifts
are random too, so that a fusion of BatchNorm into PReLU is tested on
non-trivial values.  Importing this module imports torch.
"""
import math

import torch
from torch import nn

__all__ = ["IResNet", "MobileFaceNet", "ConvTasNet", "iresnet50", "mobilefacenet", "convtasnet",
           "NETWORKS", "build", "prelu_count"]


# --- iResNet -------------------------------------------------------------------------

def _conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1,
                     bias=False)


class IBasicBlock(nn.Module):
    """BN -> conv3x3 -> BN -> PReLU -> conv3x3 (stride) -> BN, plus the shortcut."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        return out + identity


class IResNet(nn.Module):
    """The iResNet backbone for 112x112 faces (fp16 off)."""
    fc_scale = 7 * 7

    def __init__(self, layers=(3, 4, 14, 3), dropout=0.0, num_features=512):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0], stride=2)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.bn2 = nn.BatchNorm2d(512, eps=1e-05)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        self.fc = nn.Linear(512 * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)
        self.features.weight.requires_grad = False     # as arcface_torch: scale fixed

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, eps=1e-05))
        layers = [IBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        return self.features(x)


# --- MobileFaceNet -------------------------------------------------------------------

class ConvBlock(nn.Module):
    """conv -> BN -> PReLU(out_c)."""

    def __init__(self, in_c, out_c, kernel=(1, 1), stride=(1, 1), padding=(0, 0), groups=1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_c, out_c, kernel, stride=stride, padding=padding, groups=groups,
                      bias=False),
            nn.BatchNorm2d(out_c),
            nn.PReLU(out_c))

    def forward(self, x):
        return self.layers(x)


class LinearBlock(nn.Module):
    """conv -> BN (no activation)."""

    def __init__(self, in_c, out_c, kernel=(1, 1), stride=(1, 1), padding=(0, 0), groups=1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_c, out_c, kernel, stride=stride, padding=padding, groups=groups,
                      bias=False),
            nn.BatchNorm2d(out_c))

    def forward(self, x):
        return self.layers(x)


class DepthWise(nn.Module):
    """1x1 expansion to `groups` channels -> depthwise kxk -> 1x1 projection,
    with a residual connection when asked."""

    def __init__(self, in_c, out_c, residual=False, kernel=(3, 3), stride=(2, 2),
                 padding=(1, 1), groups=1):
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(in_c, groups),
            ConvBlock(groups, groups, kernel, stride, padding, groups=groups),
            LinearBlock(groups, out_c))

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.residual else y


class Residual(nn.Module):
    def __init__(self, c, num_block, groups, kernel=(3, 3), stride=(1, 1), padding=(1, 1)):
        super().__init__()
        self.layers = nn.Sequential(*(DepthWise(c, c, True, kernel, stride, padding, groups)
                                      for _ in range(num_block)))

    def forward(self, x):
        return self.layers(x)


class GDC(nn.Module):
    """Global depthwise conv 7x7 -> flatten -> Linear -> BatchNorm1d."""

    def __init__(self, embedding_size):
        super().__init__()
        self.layers = nn.Sequential(
            LinearBlock(512, 512, kernel=(7, 7), groups=512),
            nn.Flatten(),
            nn.Linear(512, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size))

    def forward(self, x):
        return self.layers(x)


class MobileFaceNet(nn.Module):
    """MobileFaceNet for 112x112 faces, width scale 2 (fp16 off)."""

    def __init__(self, num_features=512, blocks=(1, 4, 6, 2), scale=2):
        super().__init__()
        c1, c2 = 64 * scale, 128 * scale
        self.layers = nn.ModuleList([ConvBlock(3, c1, (3, 3), (2, 2), (1, 1))])
        if blocks[0] == 1:
            self.layers.append(ConvBlock(c1, c1, (3, 3), (1, 1), (1, 1), groups=64))
        else:
            self.layers.append(Residual(c1, blocks[0], groups=128))
        self.layers.extend([
            DepthWise(c1, c1, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=128),
            Residual(c1, blocks[1], groups=128),
            DepthWise(c1, c2, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=256),
            Residual(c2, blocks[2], groups=256),
            DepthWise(c2, c2, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=512),
            Residual(c2, blocks[3], groups=256),
        ])
        self.conv_sep = ConvBlock(c2, 512)
        self.features = GDC(num_features)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.features(self.conv_sep(x))


# --- random parameters ---------------------------------------------------------------

def randomize(model, seed=0):
    """Random parameters and BatchNorm statistics from `seed`, in place:
    convolutions and linear layers He-normal (activations keep their scale
    through the depth), BatchNorm and GroupNorm scale U(0.5, 1.5), shift
    N(0, 0.1), running mean N(0, 0.1), running variance U(0.5, 2), PReLU
    weights U(0.15, 0.35)."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=gen, dtype=t.dtype) * (hi - lo) + lo)

    def normal(t, std):
        t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * std)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.Linear)):
                fan_in = m.weight[0].numel()
                normal(m.weight, math.sqrt(1.0 / fan_in))
                if m.bias is not None:
                    normal(m.bias, 0.01)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                uniform(m.weight, 0.5, 1.5)
                normal(m.bias, 0.1)
                normal(m.running_mean, 0.1)
                uniform(m.running_var, 0.5, 2.0)
            elif isinstance(m, nn.GroupNorm):
                uniform(m.weight, 0.5, 1.5)
                normal(m.bias, 0.1)
            elif isinstance(m, nn.PReLU):
                uniform(m.weight, 0.15, 0.35)
    return model


def iresnet50(seed=0):
    """ArcFace iResNet-50 with random parameters (eval mode)."""
    return randomize(IResNet((3, 4, 14, 3)), seed).eval()


def mobilefacenet(seed=0):
    """MobileFaceNet (scale 2, blocks (1, 4, 6, 2)) with random parameters (eval mode)."""
    return randomize(MobileFaceNet(), seed).eval()


# --- ConvTasNet ----------------------------------------------------------------------

class TemporalBlock(nn.Module):
    """1x1 conv -> PReLU -> gLN -> depthwise conv (dilated) -> PReLU -> gLN,
    and 1x1 convs to the residual (absent in the last block) and skip paths."""

    def __init__(self, channels, hidden, dilation, residual=True):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, hidden, 1), nn.PReLU(), nn.GroupNorm(1, hidden, eps=1e-8),
            nn.Conv1d(hidden, hidden, 3, padding=dilation, dilation=dilation, groups=hidden),
            nn.PReLU(), nn.GroupNorm(1, hidden, eps=1e-8))
        self.residual = nn.Conv1d(hidden, channels, 1) if residual else None
        self.skip = nn.Conv1d(hidden, channels, 1)

    def forward(self, x):
        h = self.body(x)
        return (None if self.residual is None else self.residual(h)), self.skip(h)


class ConvTasNet(nn.Module):
    """Encoder, temporal-conv mask network, masks applied to the encoding,
    decoder; (N, 1, T) in (T a multiple of the stride), (N, sources, T) out."""

    def __init__(self, sources=2, filters=512, kernel=16, bottleneck=128, hidden=512,
                 blocks=8, stacks=3):
        super().__init__()
        self.sources, self.filters, self.stride = sources, filters, kernel // 2
        self.encoder = nn.Conv1d(1, filters, kernel, stride=self.stride, padding=self.stride,
                                 bias=False)
        self.norm = nn.GroupNorm(1, filters, eps=1e-8)
        self.bottleneck = nn.Conv1d(filters, bottleneck, 1)
        self.blocks = nn.ModuleList(
            TemporalBlock(bottleneck, hidden, 2 ** b, residual=(s, b) != (stacks - 1, blocks - 1))
            for s in range(stacks) for b in range(blocks))
        self.mask_prelu = nn.PReLU()
        self.mask_conv = nn.Conv1d(bottleneck, sources * filters, 1)
        self.mask_act = nn.ReLU()
        self.decoder = nn.ConvTranspose1d(filters, 1, kernel, stride=self.stride,
                                          padding=self.stride, bias=False)

    def forward(self, x):
        n, t = x.shape[0], x.shape[-1]
        feats = self.encoder(x)                                   # (N, filters, frames)
        h = self.bottleneck(self.norm(feats))
        skips = 0.0
        for block in self.blocks:
            residual, skip = block(h)
            if residual is not None:
                h = h + residual
            skips = skips + skip
        masks = self.mask_act(self.mask_conv(self.mask_prelu(skips)))
        masked = masks.view(n, self.sources, self.filters, -1) * feats.unsqueeze(1)
        out = self.decoder(masked.view(n * self.sources, self.filters, -1))
        return out.view(n, self.sources, t)


def convtasnet(seed=0):
    """ConvTasNet (2 sources, torchaudio's conv_tasnet_base configuration)
    with random parameters (eval mode)."""
    return randomize(ConvTasNet(), seed).eval()


# name -> (builder, input shape of one sample, PReLU modules)
NETWORKS = {
    "iresnet50": (iresnet50, (3, 112, 112), 25),
    "mobilefacenet": (mobilefacenet, (3, 112, 112), 33),
    "convtasnet": (convtasnet, (1, 8000), 49),     # 1 s of 8 kHz audio
}


def build(name, seed=0):
    """(model in eval mode, the input shape of one sample) of a network by name."""
    builder, shape, _ = NETWORKS[name]
    return builder(seed), shape


def prelu_count(model):
    """The number of PReLU modules (torch's or fastact's twins) in model."""
    return sum(isinstance(m, nn.PReLU) for m in model.modules())
