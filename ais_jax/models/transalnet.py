"""TranSalNet-Dense (Lou et al. 2022) in Flax, inference only (SPEC §6).

DenseNet-161 ``features`` without ``norm5`` -> three transformer encoders on the outputs of
dense blocks 4, 3 and 2 -> a conv/BatchNorm/ReLU decoder that upsamples by nearest neighbour
and fuses scales by multiplication -> sigmoid. BatchNorm uses its running statistics; there is
no dropout. The input size is fixed at 288x384 (H, W) by the learned position embeddings.

Parameters are one pytree (BatchNorm statistics included, as parameters ``mean``/``var``, since
nothing here is trained), named after the PyTorch modules:

* ``encoder/conv0``, ``encoder/norm0``, ``encoder/denseblock{b}/denselayer{i}/{norm1,conv1,
  norm2,conv2}``, ``encoder/transition{b}/{norm,conv}``: convolution kernels HWIO, no bias;
  BatchNorm ``{scale, bias, mean, var}``.
* ``decoder/conv{1..7}`` (kernel, bias), ``decoder/batchnorm{1..6}``.
* ``decoder/trans_encoder{1,2,3}/``: ``patch_embeddings`` (1x1 conv), ``position_embeddings``
  ``[1, h*w, hidden]``, ``layer{0,1}/{attention_norm, attn/{query,key,value,out}, ffn_norm,
  fc1, fc2}`` (Dense kernels ``[in, out]``), ``encoder_norm``.

The model never loads weights: see `ais_jax.explain.saliency.load_transalnet`.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

PRECISION = jax.lax.Precision.HIGHEST

INPUT_HW = (288, 384)  # (H, W) the release letterboxes every image into
BN_EPS = 1e-5
LN_EPS = 1e-6

# DenseNet-161 (torchvision): growth rate, layers per dense block, initial features, bottleneck.
GROWTH = 48
BLOCK_LAYERS = (6, 12, 36, 24)
INIT_FEATURES = 96
BN_SIZE = 4

# (hidden size, heads) of TransEncoder1/2/3, fed by dense blocks 4/3/2; MLP is 4x hidden.
TRANSFORMERS = ((768, 12), (768, 12), (512, 8))
NUM_TRANSFORMER_LAYERS = 2
DECODER_CHANNELS = (768, 512, 256, 128, 64, 32, 1)  # decoder conv1 ... conv7


class EvalBatchNorm(nn.Module):
    """BatchNorm in eval mode: normalise with the running statistics, then scale and shift."""

    eps: float = BN_EPS

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        mean = self.param("mean", nn.initializers.zeros, (c,))
        var = self.param("var", nn.initializers.ones, (c,))
        alpha = scale * jax.lax.rsqrt(var + self.eps)  # [c]
        def per_channel(v):
            return v.reshape((1,) * (x.ndim - 1) + (c,))
        return x * per_channel(alpha) + per_channel(bias - mean * alpha)


def _conv(features: int, size: int, name: str, *, bias: bool = True, stride: int = 1,
          padding: int | None = None) -> nn.Conv:
    pad = size // 2 if padding is None else padding
    return nn.Conv(features, (size, size), strides=stride, padding=pad, use_bias=bias,
                   precision=PRECISION, name=name)


def upsample2(x: jax.Array) -> jax.Array:
    """Nearest-neighbour x2 upsampling: ``[n, h, w, c] -> [n, 2h, 2w, c]``."""
    return jnp.repeat(jnp.repeat(x, 2, axis=-3), 2, axis=-2)


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (bottleneck) -> BN-ReLU-conv3x3: the ``GROWTH`` new channels."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.relu(EvalBatchNorm(name="norm1")(x))
        h = _conv(BN_SIZE * GROWTH, 1, "conv1", bias=False)(h)
        h = nn.relu(EvalBatchNorm(name="norm2")(h))
        return _conv(GROWTH, 3, "conv2", bias=False)(h)


class DenseBlock(nn.Module):
    """``num_layers`` dense layers, each appending its channels to the running concatenation."""

    num_layers: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(1, self.num_layers + 1):
            x = jnp.concatenate([x, DenseLayer(name=f"denselayer{i}")(x)], axis=-1)
        return x


class Transition(nn.Module):
    """BN-ReLU-conv1x1 halving the channels, then 2x2 average pooling."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(EvalBatchNorm(name="norm")(x))
        x = _conv(x.shape[-1] // 2, 1, "conv", bias=False)(x)
        return nn.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID")


class DenseNetEncoder(nn.Module):
    """torchvision DenseNet ``features`` without ``norm5``; returns dense blocks 2, 3, 4."""

    block_layers: tuple[int, ...] = BLOCK_LAYERS

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Args: x ``[n, 288, 384, 3]``. Returns ``[n, 36, 48, 768]``, ``[n, 18, 24, 2112]``,
        ``[n, 9, 12, 2208]`` (strides 8, 16, 32)."""
        x = _conv(INIT_FEATURES, 7, "conv0", bias=False, stride=2, padding=3)(x)
        x = nn.relu(EvalBatchNorm(name="norm0")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        outputs = []
        for b, num_layers in enumerate(self.block_layers, start=1):
            x = DenseBlock(num_layers, name=f"denseblock{b}")(x)
            if b >= 2:
                outputs.append(x)
            if b < len(self.block_layers):
                x = Transition(name=f"transition{b}")(x)
        return tuple(outputs)


class Attention(nn.Module):
    """Multi-head self-attention with separate query/key/value/out projections (as the release)."""

    hidden: int
    heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x ``[n, tokens, hidden]``. Returns ``[n, tokens, hidden]``."""
        head_dim = self.hidden // self.heads
        def split(t):
            return t.reshape(*t.shape[:-1], self.heads, head_dim)  # [n, t, heads, d]
        def dense(name):
            return nn.Dense(self.hidden, precision=PRECISION, name=name)
        q, k, v = (split(dense(name)(x)) for name in ("query", "key", "value"))
        scores = jnp.einsum("nqhd,nkhd->nhqk", q, k, precision=PRECISION) / math.sqrt(head_dim)
        probs = jax.nn.softmax(scores, axis=-1)
        context = jnp.einsum("nhqk,nkhd->nqhd", probs, v, precision=PRECISION)
        return dense("out")(context.reshape(*x.shape[:-1], self.hidden))


class TransformerLayer(nn.Module):
    """Pre-LayerNorm block: x + attn(LN(x)), then x + MLP(LN(x)) with exact (erf) GELU."""

    hidden: int
    heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def layer_norm(name):
            return nn.LayerNorm(LN_EPS, use_fast_variance=False, name=name)
        x = x + Attention(self.hidden, self.heads, name="attn")(layer_norm("attention_norm")(x))
        h = layer_norm("ffn_norm")(x)
        h = nn.Dense(4 * self.hidden, precision=PRECISION, name="fc1")(h)
        # PyTorch's F.gelu default is the erf form; jax.nn.gelu defaults to the tanh one.
        h = jax.nn.gelu(h, approximate=False)
        return x + nn.Dense(self.hidden, precision=PRECISION, name="fc2")(h)


class TransformerEncoder(nn.Module):
    """1x1-conv patch embedding -> tokens (row-major) + position embeddings -> layers -> LN."""

    hidden: int
    heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x ``[n, h, w, c_in]``. Returns ``[n, h, w, hidden]``."""
        n, h, w, _ = x.shape
        tokens = _conv(self.hidden, 1, "patch_embeddings")(x).reshape(n, h * w, self.hidden)
        pos = self.param("position_embeddings", nn.initializers.zeros, (1, h * w, self.hidden))
        tokens = tokens + pos
        for j in range(NUM_TRANSFORMER_LAYERS):
            tokens = TransformerLayer(self.hidden, self.heads, name=f"layer{j}")(tokens)
        tokens = nn.LayerNorm(LN_EPS, use_fast_variance=False, name="encoder_norm")(tokens)
        return tokens.reshape(n, h, w, self.hidden)


class Decoder(nn.Module):
    """Transformer encoders on three scales, fused by multiplication, upsampled to the input."""

    @nn.compact
    def __call__(self, x3, x4, x5) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Args: dense blocks 2, 3, 4 ``[n, h_s, w_s, c_s]`` at strides 8, 16, 32.

        Returns:
          (logits ``[n, 8 h_8, 8 w_8, 1]``, ``{'trans_encoder{1,2,3}': [n, h_s, w_s, hidden]}``).
        """
        te = [TransformerEncoder(hid, heads, name=f"trans_encoder{i}")
              for i, (hid, heads) in enumerate(TRANSFORMERS, start=1)]
        conv = [_conv(c, 3, f"conv{i}") for i, c in enumerate(DECODER_CHANNELS, start=1)]
        bn = [EvalBatchNorm(name=f"batchnorm{i}") for i in range(1, len(DECODER_CHANNELS))]
        def conv_bn_relu(i, x):
            return nn.relu(bn[i](conv[i](x)))

        t1, t2, t3 = te[0](x5), te[1](x4), te[2](x3)
        x = upsample2(conv_bn_relu(0, t1))  # stride 16
        x = upsample2(conv_bn_relu(1, nn.relu(x * t2)))  # stride 8
        x = upsample2(conv_bn_relu(2, nn.relu(x * t3)))  # stride 4
        x = upsample2(conv_bn_relu(3, x))  # stride 2
        x = upsample2(conv_bn_relu(4, x))  # stride 1
        x = conv_bn_relu(5, x)
        logits = conv[6](x)
        return logits, {"trans_encoder1": t1, "trans_encoder2": t2, "trans_encoder3": t3}


class TranSalNet(nn.Module):
    """TranSalNet-Dense: ``apply(params, images) -> (saliency, intermediates)``."""

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Predicts saliency for letterboxed images.

        Args:
          images: ``[n, 288, 384, 3]`` float, **BGR**, scaled to [0, 1], not normalised
            (`ais_jax.explain.saliency.preprocess`).

        Returns:
          (saliency ``[n, 288, 384]`` in (0, 1), intermediates) where intermediates holds the
          encoder maps ``denseblock{2,3,4}`` and the transformer outputs ``trans_encoder{1,2,3}``
          (NHWC; TransEncoder1 reads dense block 4, TransEncoder3 dense block 2).
        """
        if images.shape[-3:] != (*INPUT_HW, 3):
            raise ValueError(
                f"TranSalNet expects letterboxed [n, {INPUT_HW[0]}, {INPUT_HW[1]}, 3] images, "
                f"got shape {images.shape}")
        x3, x4, x5 = DenseNetEncoder(name="encoder")(images)
        logits, inter = Decoder(name="decoder")(x3, x4, x5)
        inter.update(denseblock2=x3, denseblock3=x4, denseblock4=x5)
        return jax.nn.sigmoid(logits[..., 0]), inter


def param_shapes() -> dict:
    """The parameter pytree's shapes (as `jax.ShapeDtypeStruct`), without allocating it."""
    dummy = jax.ShapeDtypeStruct((1, *INPUT_HW, 3), jnp.float32)
    return jax.eval_shape(TranSalNet().init, jax.random.key(0), dummy)["params"]
