"""The sections the Train Model dock (widgets/training.py) is composed of.

Each owns its widgets, their signals and what they do; the dock builds them, hands each the others it needs
(explicit references, or callbacks where the dock decides), lays them out and lends their names to the
adapters (widgets/applications), scripts and tests.

- data.py: the application and the training set (channels.py: how images of several channels are read)
- model.py: the network, training parameters, device, settings and augmentations
- settings.py: the controls as ``Settings``: read, written, reset, remembered
- prediction.py: the objects' size, test-time augmentation, Estimate and Evaluate
- actions.py: Start, Stop, Resume, Reset/Save/Load Model, Predict, Add prediction, the status line
- progress.py: the session's training events in words, in the status line
- elsewhere.py: a training job for another machine, and the model it trained imported back
"""
