# One image for every role of docs/deployment.md: `recoup serve`, `recoup worker`, `recoup db upgrade`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RECOUP_DATA_DIR=/var/lib/recoup

# A CJK font for printed letters (RECOUP_LETTER_FONT) and curl for health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && useradd --system --home /var/lib/recoup --create-home recoup

USER recoup
EXPOSE 8000
CMD ["recoup", "serve", "--no-worker", "--host", "0.0.0.0", "--port", "8000"]
