"""The deca backend of the face stage: DECA's coarse encoder (ResNet-50 + regression head) run on the
tracked face crop of every decoded frame, with the user's ``deca_model.tar``."""
