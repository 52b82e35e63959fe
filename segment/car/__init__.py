"""CaR (CLIP as RNN): training-free recurrent segmentation with visual prompts."""
