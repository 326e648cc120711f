"""How: taming the noise downstream (the paper's §4): frozen features (`extract`) from registered
backbones, probe heads (`probe`) and the regularisers, Local Gradient Matching among them."""
