"""The Keras side of bench/keras_bench.py, run by the TensorFlow virtual environment's Python (never dlplay's).

It builds the article's §5.3 CIFAR-10 model exactly as the article writes it, prepares the data as the article does
(float32 / 255, one-hot labels), then answers commands on stdin, one line each:
  train    -> trains one epoch (batch 64, model.fit) and prints the images/s
  latency  -> prints the median seconds of model.predict and of model(x) on one image
  quit
"""
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message="Do not pass an `input_shape`")  # Keras 3 on the article's style

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.keras.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D  # noqa: E402
from tensorflow.keras.models import Sequential  # noqa: E402
from timing import median_seconds  # noqa: E402  (bench/, this script's folder)

BATCH_SIZE = 64


def article_model() -> Sequential:
    """§5.3, line by line."""
    model = Sequential()
    model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(32, 32, 3)))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Conv2D(128, (3, 3), activation='relu'))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Flatten())
    model.add(Dense(128, activation='relu'))
    model.add(Dropout(0.5))
    model.add(Dense(10, activation='softmax'))
    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
    return model


def main() -> None:
    """`python keras_worker.py DATA.npz`: serve the commands above on stdin."""
    data = np.load(sys.argv[1])
    x_train = data["images_nhwc"].astype('float32') / 255.0
    y_train = tf.keras.utils.to_categorical(data["labels"], 10)
    model = article_model()
    one = x_train[:1]
    print(f"ready tensorflow {tf.__version__}", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "train":
            start = time.perf_counter()
            model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=1, verbose=0)
            print(len(x_train) / (time.perf_counter() - start), flush=True)
        elif command == "latency":
            print(median_seconds(lambda: model.predict(one, verbose=0)),
                  median_seconds(lambda: model(one, training=False).numpy()), flush=True)
        elif command == "quit":
            return


if __name__ == "__main__":
    main()
