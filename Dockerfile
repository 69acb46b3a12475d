# edgenas with pinned dependencies; `docker run edgenas` prints the help.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ cmake gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/edgenas
COPY pyproject.toml README.md ./
COPY edgenas ./edgenas
COPY profiles ./profiles
COPY targets ./targets
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir .

RUN useradd --create-home edgenas
USER edgenas
ENTRYPOINT ["edgenas"]
CMD ["--help"]
