# edgenas with pinned dependencies; `docker run edgenas` prints the help.
FROM python:3.11-slim-bookworm

# Compilers TVM links libraries with, and the aarch64 cross linker: Debian bookworm's gcc-defaults versions.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       gcc=4:12.2.0-3 g++=4:12.2.0-3 gcc-aarch64-linux-gnu=4:12.2.0-3 g++-aarch64-linux-gnu=4:12.2.0-3 \
       cmake=3.25.1-1 qemu-user=1:7.2+dfsg-7+deb12u18+b3 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/edgenas
COPY pyproject.toml README.md ./
COPY edgenas ./edgenas
COPY profiles ./profiles
COPY targets ./targets
# The CPU build of PyTorch first, so installing edgenas (which pins every dependency) never pulls the CUDA build.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir .

RUN groupadd --gid 10001 edgenas && useradd --uid 10001 --gid 10001 --create-home edgenas
USER 10001:10001
ENTRYPOINT ["edgenas"]
CMD ["--help"]
