// The OCR worker process for the unit tests: what `mxfront --ocr-worker` runs, without the server.
#include <cstring>

#include "filters/ocr/worker.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--ocr-worker") == 0) return filters::ocr::worker_main(argc - 2, argv + 2);
  return 2;
}
