"""ZegCLIP: one-stage zero-shot segmentation on a frozen open_clip ViT with deep prompt tuning."""
