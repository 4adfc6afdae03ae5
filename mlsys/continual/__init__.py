"Chapter 9: continual learning and test in production (stateless vs stateful retraining, triggers, champion/challenger, shadow, A/B, canary, interleaving, bandits)."
