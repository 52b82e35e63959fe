"""Peer side of the embedding benchmark: `clip-retrieval inference` with coarchive's toy model, offline.

Runs inside the peer virtualenv (clip-retrieval pins numpy<2, so it cannot share coarchive's). It registers the
toy architecture's open_clip config, then hands clip-retrieval the same full checkpoint coarchive loads.
usage: python cr_peer.py CONFIG_DIR CHECKPOINT [clip-retrieval inference flags...]
"""

import os
import sys

for name, value in {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(name, value)


def main(argv: list[str]) -> None:
    """Register the config, then run clip-retrieval inference with the remaining flags."""
    import fire
    import open_clip
    from clip_retrieval.clip_inference.main import main as inference

    config_dir, checkpoint, flags = argv[0], os.path.abspath(argv[1]), argv[2:]
    open_clip.add_model_config(config_dir)
    fire.Fire(inference, command=[*flags, "--clip_model", f"open_clip:coarchive-toy-vit/{checkpoint}"])


if __name__ == "__main__":  # clip-retrieval's loggers use the spawn start method
    main(sys.argv[1:])
