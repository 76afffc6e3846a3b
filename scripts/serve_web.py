r"""Serves the draw-a-digit web page with a LiteRT export, for a browser on this machine (by default).

Draw a digit with mouse, touch or pen, or drop an image file: LiteRT.js classifies it in the browser, with the same
MNIST-style preprocessing as predict.py. Needs LiteRT.js installed once: npm ci --prefix web

python scripts/serve_web.py                                          # saved_models/litert/lenet, highest version
python scripts/serve_web.py --litert_dir=saved_models/litert/lenet/3 --port=8080
"""

from __future__ import annotations

import common
from absl import flags

from mnist_tf.export import web_page

flags.DEFINE_string(
    "litert_dir",
    "saved_models/litert/lenet",
    "A LiteRT export (a folder with report.json and .tflite files), or the folder of its versions (the highest).",
)
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on; 0.0.0.0 lets other machines in.")
flags.DEFINE_integer("port", 8000, "Port to listen on (0: any free one).", lower_bound=0, upper_bound=65535)
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    models = web_page.litert_export(FLAGS.litert_dir)
    server = web_page.make_server(models, FLAGS.host, FLAGS.port)
    print(f"serving {models} at http://{FLAGS.host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()


if __name__ == "__main__":
    common.run(main)
