"""Check a downloaded dataset: python data_scripts/prepare_visa.py ARCHIVE_OR_FOLDER [--write-meta].

Extracts an archive once, checks the layout, prints counts per class and split, validates that every
anomalous image has a mask of its size (header reads), and with --write-meta writes an ADer meta.json.
On Colab, with the archive on Google Drive, extract it to the fast local disk:
    python data_scripts/prepare_visa.py /content/drive/MyDrive/VisA_20220922.tar \\
        --dest /content/data/visa
(the notebooks' data_archive parameter does the same: omniad_lite.colab.dataset_from_archive).
The logic lives in omniad_lite/data/prepare.py.
"""
import sys

from omniad_lite.data.prepare import script_main

if __name__ == "__main__":
    sys.exit(script_main("visa"))
