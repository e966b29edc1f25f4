import sys
from pathlib import Path

# deploy.py imports `deploys` and `facts` from the repository root, as the pyinfra CLI would.
ROOT = str(Path(__file__).resolve().parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
