"""noisecli: does random noise in pre-training data hurt a language model, and how to tame it downstream.

Stages, in pipeline order (each a module with a public function the CLI calls):
  What: prepare (tokenize + mix noise) -> pretrain -> eval-ntp
  Why:  theory
  How:  extract -> probe, finetune
LGM in your own code: noisecli.how.lgm.lgm_loss (PyTorch), noisecli.sklearn.LGMClassifier (scikit-learn),
noisecli.hf.LGMTrainer (Hugging Face Trainer).
"""

__version__ = "0.1.0"
