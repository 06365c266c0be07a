"""`socialcare demo`: the whole app on the embedded default, with a bundled team, sample
mentions arriving over a few minutes, and a simulated shift working them."""
