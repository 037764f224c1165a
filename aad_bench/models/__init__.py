"""Models: latent codecs, the video DiT backbone (teacher / student / critic / discriminator), attention + KV cache."""
