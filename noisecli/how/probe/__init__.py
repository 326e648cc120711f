"""`noisecli probe`: linear and MLP heads on frozen features (the paper's §4, Tables 1-3, 5-7).

    command.py       the command: grid search, seeds, results (ProbeConfig, probe)
    train_heads.py   many heads trained at once on one feature matrix (the fused LGM gradient)
    heads/           the heads, one file each (a registry)
    regularisers/    the penalties: none, l2, LGM and its ablations, one file each (a registry)

Local Gradient Matching itself is `how/lgm.py`, which fine-tuning and the integrations share."""
