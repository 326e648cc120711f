"""What: does noise in the pre-training data hurt? Data (`prepare`, noise, tokens), the language model
(`pretrain`) and its exact next-token loss (`eval-ntp`). The paper's §3."""
