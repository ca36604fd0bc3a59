"""E-I network vs its BatchNorm twin: training-step time and peak memory (same as ``eisnn bench``).

    PYTHONPATH=src python benchmarks/train_step.py                 # CPU, VGG-8 b32 and ResNet-18 b16
    PYTHONPATH=src python benchmarks/train_step.py --device cuda --models resnet18 --batch 128 --dtype bf16
"""

from eisnn.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
