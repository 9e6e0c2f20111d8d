"""Post-call delivery channels: one module per destination, one ``send`` each."""
