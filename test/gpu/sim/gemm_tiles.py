#!/usr/bin/env python3
# Checks, without a GPU, the index arithmetic of native/cuda/gemm_tile.cuh + gemm_tf32.cu/gemm_fp32.cu:
# the Stager mappings, shared-memory stores, both compute mappings (FP32 8x4 per thread; wmma
# warp tiles as block products) and the epilogue, for all four layouts with padding and
# ragged edges, against numpy. Mirrors the kernels by hand: keep it in step with them.
# Run: python3 test/gpu/sim/gemm_tiles.py  (numpy; about a minute)
import sys
import numpy as np
failed = 0
rng=np.random.default_rng(0)
BM=BN=64; BK=32; T=128; LDA=BK+4; LDB=BN+4

def make_stager(is_a, trans, X, ld, rows, K, mn0, tid):
    k_contig = (not trans) if is_a else trans
    if k_contig:
        k=tid%32; v=tid//32
        return dict(p=(mn0+v)*ld+k, step=4*ld, adv=BK, fixed=k, flim=K, fadv=BK, var=mn0+v, vlim=rows, vadv=0, dv=4)
    f=tid%64; k=tid//64
    return dict(p=k*ld+mn0+f, step=2*ld, adv=BK*ld, fixed=mn0+f, flim=rows, fadv=0, var=k, vlim=K, vadv=BK, dv=2)

def load(s, X):
    out=[]
    for e in range(16):
        ok = s['fixed']<s['flim'] and s['var']+e*s['dv']<s['vlim']
        out.append(X[s['p']+e*s['step']] if ok else 0.0)
    return out

def advance(s):
    s['p']+=s['adv']; s['fixed']+=s['fadv']; s['var']+=s['vadv']

def gemm(ta,tb,M,N,K,A,lda,B,ldb,C,ldc,alpha,beta,mode):
    C=C.copy()
    for bx in range((M+63)//64):
        for by in range((N+63)//64):
            m0,n0=bx*64,by*64
            acc=np.zeros((64,64))
            sa=[make_stager(True,ta,A,lda,M,K,m0,t) for t in range(T)]
            sb=[make_stager(False,tb,B,ldb,N,K,n0,t) for t in range(T)]
            ra=[load(s,A) for s in sa]; rb=[load(s,B) for s in sb]
            for k0 in range(0,K,BK):
                As=np.full(64*LDA,np.nan); Bs=np.full(32*LDB,np.nan)
                for t in range(T):
                    for e in range(16):
                        if not ta: As[(t//32+4*e)*LDA+t%32]=ra[t][e]
                        else: As[(t%64)*LDA+t//64+2*e]=ra[t][e]
                        if tb: Bs[(t%32)*LDB+t//32+4*e]=rb[t][e]
                        else: Bs[(t//64+2*e)*LDB+t%64]=rb[t][e]
                if k0+BK<K:
                    for s in sa+sb: advance(s)
                    ra=[load(s,A) for s in sa]; rb=[load(s,B) for s in sb]
                At=As.reshape(64,LDA)[:,:BK]; Bt=Bs.reshape(32,LDB)[:,:BN]
                assert not np.isnan(At).any() and not np.isnan(Bt).any()
                if mode=='fp32':
                    for t in range(T):
                        tx,ty=t%16,t//16
                        for i in range(8):
                            for j in range(4):
                                acc[ty*8+i,tx+16*j]+=At[ty*8+i]@Bt[:,tx+16*j]
                else:
                    for w in range(4):
                        wm,wn=w//2,w%2
                        for kk in range(0,BK,8):
                            for i in range(2):
                                for j in range(2):
                                    r0=wm*32+i*16; c0=wn*32+j*16
                                    acc[r0:r0+16,c0:c0+16]+=At[r0:r0+16,kk:kk+8]@Bt[kk:kk+8,c0:c0+16]
            for m in range(64):
                for n in range(64):
                    gm,gn=m0+m,n0+n
                    if gm<M and gn<N:
                        v=alpha*acc[m,n]
                        if beta!=0: v+=beta*C[gm*ldc+gn]
                        C[gm*ldc+gn]=v
    return C

for (ta,tb,M,N,K,pad) in [(0,1,70,65,33,0),(0,0,37,53,29,3),(1,0,64,64,64,1),(1,1,5,130,70,2),(0,1,1,1,1,0)]:
    lda=(M if ta else K)+pad; ldb=(K if tb else N)+pad; ldc=N+pad
    A=rng.standard_normal((K if ta else M)*lda); B=rng.standard_normal((N if tb else K)*ldb); C=rng.standard_normal(M*ldc)
    Am=A.reshape(-1,lda)[:, :(M if ta else K)]; Bm=B.reshape(-1,ldb)[:, :(K if tb else N)]
    opA=Am.T if ta else Am; opB=Bm.T if tb else Bm
    want=C.reshape(M,ldc).copy(); want[:,:N]=0.5*(opA@opB)+0.25*want[:,:N]
    for mode in ('fp32','tf32'):
        got=gemm(ta,tb,M,N,K,A,lda,B,ldb,C,ldc,0.5,0.25,mode).reshape(M,ldc)
        ok = np.allclose(got,want)
        failed += not ok
        print(ta,tb,M,N,K,pad,mode,'OK' if ok else 'MISMATCH')
sys.exit(1 if failed else 0)
