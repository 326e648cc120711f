"""The pre-training models as torch modules (gpt.py: nanoGPT's GPT-2; bert.py: BertForMaskedLM behind GPT's
interface; losses.py: GPT's chunked LM-head cross-entropy). What each is to the rest of noisecli (its config
and presets, batches, scoring, export) is its entry in `what/architectures/`."""
