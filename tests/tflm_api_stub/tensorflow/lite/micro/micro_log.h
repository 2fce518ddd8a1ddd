void MicroPrintf(const char*, ...);
