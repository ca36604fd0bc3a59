#!/usr/bin/env bash
# One-shot CUDA check (run from the repository root on a GPU machine; about 3-5 minutes):
# fused vs eager on the GPU, then ResNet-18 (batch 128, T=4) E-I vs BN in fp32 and bf16 autocast,
# with a training step run under torch.cuda.set_sync_debug_mode("error").
# Usage: bash benchmarks/gpu_check.sh [python]   (default: python3; PYTHONPATH=src is set here)
set -u
PY="${1:-python3}"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
echo "== environment"
"$PY" - <<'PYEOF' || { echo "torch with CUDA is required"; exit 2; }
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
assert torch.cuda.is_available()
print("device", torch.cuda.get_device_name(0))
try:
    import triton
    print("triton", triton.__version__, "(eisnn has no Triton kernels; not used)")
except ImportError:
    print("triton not installed (not needed)")
PYEOF
echo "== fused vs eager on CUDA (max abs differences; spikes must be equal)"
timeout 120 "$PY" - <<'PYEOF'
import torch
from eisnn import functional as EF
torch.manual_seed(0)
dev = "cuda"
x = (torch.rand(4, 8, 16, 8, 8, device=dev) * 1.6).requires_grad_()
a, b = EF.lif_multistep_eager(x), EF.lif_multistep_fused(x)
ga, = torch.autograd.grad(a.sum(), x); gb, = torch.autograd.grad(b.sum(), x)
print("lif spikes equal:", torch.equal(a, b), " grad max diff:", float((ga - gb).abs().max()))
c = torch.rand(16, 20, 6, 6, device=dev); c[:, 16:, :2] = 0; c[1, 16:] = 0
w, gi, ge, be = (torch.rand(16, 4, device=dev), torch.rand(4, device=dev), torch.rand(16, device=dev), torch.randn(16, device=dev))
ins = [t.requires_grad_() for t in (c, w, gi, ge, be)]
r = EF.ei_integrate_eager(c[:, :16], c[:, 16:], w, gi, ge, be); f = EF.ei_integrate_currents(c, 16, w, gi, ge, be)
gr = torch.autograd.grad(r.sum(), ins); gf = torch.autograd.grad(f.sum(), ins)
print("ei rel diff out:", float((r - f).abs().max() / r.abs().max()),
      " grads:", [round(float((p - q).abs().max() / p.abs().max().clamp_min(1e-30)), 8) for p, q in zip(gr, gf)])
PYEOF
for dtype in fp32 bf16; do
  echo "== ResNet-18, batch 128, T=4, $dtype"
  timeout 150 "$PY" -m eisnn.benchmark --device cuda --models resnet18 --batch 128 --T 4 --dtype "$dtype" \
    --warmup 3 --steps 10 --sync-check || echo "benchmark $dtype failed with status $?"
done
echo "== done"
