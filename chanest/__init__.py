"""chanest: deep-learning OFDM channel estimation, base training and LoRA transfer per scenario."""

__version__ = "0.1.0"
