"""Files and media: decoding and probing (media), WAV files (wav), atomic writes and hashing (files),
Arrow helpers (arrow), native libraries' start-up chatter (native)."""
