"""Training the navigator (`flux train`): structure SFT first; trajectory RL is next.

Heavy packages (torch, transformers, trl, peft, datasets) are imported only when a
run starts; install them with the `train` extra.
"""
