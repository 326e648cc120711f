"""`noisecli finetune`: full fine-tuning of a Hugging Face encoder with or without L_gm (the paper's Table 4).

    command.py       the command: tasks × methods × seeds, each a resumable run (FinetuneConfig, finetune)
    model.py         the encoder with its head, the objective, and the LGM term on the head's input
    data.py          tokenised splits and their batches
    results.py       the results table (mean ± std over seeds)
    regularisers/    L2-SP, SMART, LNSR, none, one file each (a registry)"""
