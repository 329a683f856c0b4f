"""The paper's searched proxies (Appendix B) written as genomes of our search space.

FlexiBERT: sum_i ((1/H)^2 + log(softmax(||A||_F)))  ->  add(square(reciprocal(H)), log(softmax(fro(A))))
  (note: softmax of the scalar ||A||_F is 1, so the second term is log 1 = 0 for every architecture;
  the proxy ranks by the mean of 1/H^2.)
GPT-2:     sum_i (|normalize(G)| + log(|mean(W)|))  ->  add(abs(normsum(G)), log(abs(mean(W))))
  ('normalize' is not in Table 7; we read it as the normalised sum f11, the closest op; the
  original code's `normalize` was a z-score, whose mean is always 0: it cannot be what was meant.)
LLaMA:     sum_i (||W1||_1^2 + softmax(W2)^(1/2))   ->  add(square(l1(W)), sqrt(softmax(W)))
  (both inputs are weight sets; the paper does not say which two, we use W for both.)
"""

PUBLISHED = {
    "lpzero_flexibert": "add(square(reciprocal(H)),log(softmax(fro(A))))",
    "lpzero_gpt2": "add(abs(normsum(G)),log(abs(mean(W))))",
    "lpzero_llama": "add(square(l1(W)),sqrt(softmax(W)))",
}
