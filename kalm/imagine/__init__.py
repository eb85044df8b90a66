"""KALM's second stage: imagine rollouts for novel goals with a grounded LM, label and filter them."""
