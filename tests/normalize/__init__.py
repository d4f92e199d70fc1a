"""Normalization tests; what several of them share."""


def read_as_windows_1252(text: str) -> str:
    """``text``'s UTF-8 bytes, each read as the Windows-1252 character (a byte it leaves
    undefined as Latin-1, as most readers do): a spreadsheet's round trip."""
    return "".join(
        bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in text.encode("utf-8")
    )
