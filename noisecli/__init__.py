"""noisecli: does random noise in pre-training data hurt a language model, and how to tame it downstream.

Stages, in pipeline order (each a module with a public function and its `Stage` record, which the CLI reads):
  What: prepare (tokenize + mix noise) -> pretrain -> eval-ntp, export        noisecli/what/
  Why:  theory prop1, curve, k, lemma1, predict                              noisecli/why/
  How:  extract -> probe, finetune                                           noisecli/how/
  Your corpus: scan                                                          noisecli/scan/
  The paper: reproduce                                                       noisecli/paper/
LGM in your own code: noisecli.how.lgm.lgm_loss (PyTorch), noisecli.sklearn.LGMClassifier (scikit-learn),
noisecli.hf.LGMTrainer (Hugging Face Trainer).
"""

__version__ = "0.1.0"
