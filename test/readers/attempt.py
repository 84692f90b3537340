"""What both reader scripts share: run one reader's check and report its own error text instead of raising."""
import sys
import traceback


def attempt(check):
    try:
        return check()
    except Exception as e:  # the test reports the reader's own error text
        traceback.print_exc(file=sys.stderr)
        return {"error": f"{type(e).__name__}: {e}"}
