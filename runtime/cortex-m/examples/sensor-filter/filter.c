/* The container: despikes a window of sensor samples (median of three) and smooths it (exponential
 * moving average, alpha = 1/4). Compiled with `clang -O2 -target bpf`; it sees only its context. */
#define MAX_SAMPLES 64

struct samples {
  unsigned int n;
  short v[MAX_SAMPLES];
};

static int median3(int a, int b, int c) {
  if (a > b) { int t = a; a = b; b = t; }
  if (b > c) b = c;
  return a > b ? a : b;
}

/* Returns (filtered value + 32768) << 16 | number of samples the median changed by more than 500. */
unsigned long long sensor_filter(struct samples *s) {
  unsigned int n = s->n > MAX_SAMPLES ? MAX_SAMPLES : s->n;
  if (n < 3) return 0;
  int ema = s->v[0] * 16; /* fixed point, 4 fraction bits */
  unsigned int spikes = 0;
  for (unsigned int i = 1; i + 1 < n; i++) {
    int m = median3(s->v[i - 1], s->v[i], s->v[i + 1]);
    int d = m - s->v[i];
    if (d > 500 || d < -500) spikes++;
    ema += (m * 16 - ema) >> 2; /* arithmetic shifts: eBPF v3 has no signed division */
  }
  return (unsigned long long)(unsigned int)((ema >> 4) + 32768) << 16 | spikes;
}
