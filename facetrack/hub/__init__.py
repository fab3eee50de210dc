"""Hub model folders: build (tiny or from pretrained parts), convert LLaVA-OneVision, tokenizers, the model card, save and upload."""
