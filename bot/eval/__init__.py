"""Quality measurements: held-out set, public sets, threshold calibration (`bot/assistant eval|calibrate`)."""
