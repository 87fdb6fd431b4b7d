"""Check a downloaded MVTec AD 2: python data_scripts/prepare_mvtec_ad2.py ARCHIVE_OR_FOLDER [--write-meta].

Extracts an archive once, checks the layout (train, validation, test_public with masks, test_private,
test_private_mixed), prints counts per class and split, validates that every image is readable and every
test_public/bad image has a mask of its size (header reads), and with --write-meta writes an ADer meta.json of
train and test_public. On Colab, with the archive on Google Drive, extract it to the fast local disk:
    python data_scripts/prepare_mvtec_ad2.py /content/drive/MyDrive/mvtec_ad_2.tar.xz --dest /content/data/mvtec_ad2
The logic lives in omniad_lite/data/prepare.py.
"""
import sys

from omniad_lite.data.prepare import script_main

if __name__ == "__main__":
    sys.exit(script_main("mvtec_ad2"))
