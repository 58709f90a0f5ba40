"""Use a trained model: predict the user's own files, export to ONNX.

    dlbasics predict --config mnist_cnn --ckpt_path best --data.predict_path my_digits/
    dlbasics export --config mnist_cnn --ckpt_path best

    from dlbasics.use import load, predict
    result = predict(load("best.ckpt"), "my_digits/")   # result["label"], result["probability"], result.inputs

:mod:`~dlbasics.use.files` reads the user's files, :mod:`~dlbasics.use.images` turns photos into MNIST form,
:mod:`~dlbasics.use.predict` runs the model and names the columns, :mod:`~dlbasics.use.onnx` exports.
"""

from dlbasics.use.predict import Predictions, load, predict

__all__ = ["Predictions", "load", "predict"]
